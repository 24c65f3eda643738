"""Fixtures for tracing tests: a real ``memlens collector`` process on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.collector_process import RunningCollector, start_collector, stop_collector
from tests.support.fake_jaeger import serving


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[RunningCollector]:
    running = start_collector(tmp_path / "traces.db", "--max-body-bytes", str(1 << 20))
    try:
        yield running
    finally:
        stop_collector(running)


@pytest.fixture
def jaeger() -> Iterator[str]:
    """The base URL of a fake Jaeger query service (tests/support/fake_jaeger.py)."""
    with serving() as url:
        yield url
