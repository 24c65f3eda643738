"""Byte, count and duration formatting (memlens/units.py): once, at the edge."""

from __future__ import annotations

import pytest

from memlens.units import format_bytes, format_count, format_ms, format_percent


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (25 * 2**30 + 2**29, "25.5 GiB"),
        (3 * 2**50, "3.0 PiB"),
        (-2048, "-2.0 KiB"),
    ],
)
def test_format_bytes(value: int, text: str) -> None:
    assert format_bytes(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(999, "999"), (43_100_000, "43.1M"), (6_738_415_616, "6.7B"), (1_500, "1.5K")],
)
def test_format_count(value: int, text: str) -> None:
    assert format_count(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0.00 ms"),
        (3.14159, "3.14 ms"),
        (9.999, "10.00 ms"),
        (0.125, "0.13 ms"),  # halves away from zero, as the webview's toFixed showed them
        (11.2, "11.2 ms"),
        (61.5, "61.5 ms"),
        (999.96, "1000.0 ms"),
        (1000.0, "1.00 s"),
        (12_345.0, "12.35 s"),
    ],
)
def test_format_ms(value: float, text: str) -> None:
    assert format_ms(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.012, "1.20%"), (0.0, "0.00%"), (0.1, "10.0%"), (0.734, "73.4%"), (-0.05, "-5.00%")],
)
def test_format_percent(value: float, text: str) -> None:
    assert format_percent(value) == text
