"""Byte and parameter counts and durations: parsed from user sizes, formatted once at the
edge (sizes in binary units)."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from memlens.errors import UsageError

_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_SIZE = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_size(value: Any, name: str = "size") -> int:
    """``25769803776``, ``"24GiB"``, ``"24 GB"`` → bytes; UsageError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and (match := _SIZE.match(value)):
        unit = (match["unit"] or "B").lower()
        size = int(float(match["number"]) * _UNITS[unit])
        if size > 0:
            return size
    raise UsageError(f"{name} {value!r} is not a size: use bytes or e.g. '24GiB'")


def format_bytes(num_bytes: int) -> str:
    """``1536`` → ``'1.5 KiB'``; binary units, one decimal above bytes."""
    if num_bytes < 0:
        return "-" + format_bytes(-num_bytes)
    value = float(num_bytes)
    for unit in _BINARY_UNITS:
        if value < 1024 or unit == _BINARY_UNITS[-1]:
            return f"{num_bytes} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _fixed(value: float, digits: int) -> str:
    """``value`` with ``digits`` decimals, halves rounded away from zero as JavaScript's
    ``toFixed`` rounds them (Python's format rounds them to even)."""
    return str(Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def format_ms(ms: float) -> str:
    """``48.2`` → ``'48.2 ms'``, ``3.14159`` → ``'3.14 ms'``, ``1500`` → ``'1.50 s'``:
    durations in milliseconds, two decimals below 10 ms, seconds from 1000 ms."""
    if ms >= 1000:
        return f"{_fixed(ms / 1000, 2)} s"
    return f"{_fixed(ms, 2 if ms < 10 else 1)} ms"


def format_count(count: int) -> str:
    """``43_100_000`` → ``'43.1M'``: parameter counts with decimal suffixes."""
    for divisor, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if abs(count) >= divisor:
            return f"{count / divisor:.1f}{suffix}"
    return str(count)


def format_percent(fraction: float) -> str:
    """``0.012`` → ``'1.20%'``: two decimals below 10 %, one from there up."""
    return f"{_fixed(fraction * 100, 2 if fraction < 0.1 else 1)}%"
