"""Fixtures for tracing tests: a real ``memlens collector`` process on a free loopback port."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.tracing.fake_jaeger import serving


@dataclass
class RunningCollector:
    url: str
    """The traces endpoint, ``http://127.0.0.1:PORT/v1/traces``."""
    db: Path
    process: subprocess.Popen[str]

    @property
    def endpoint(self) -> str:
        """The base URL (what OTEL_EXPORTER_OTLP_ENDPOINT takes)."""
        return self.url.removesuffix("/v1/traces")


def start_collector(db: Path, *extra: str) -> RunningCollector:
    """Start ``memlens collector --port 0`` and wait for the line that names its port."""
    process = subprocess.Popen(
        [sys.executable, "-m", "memlens", "collector", "--port", "0", "--db", str(db), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("listening on "):
        process.kill()
        process.wait()
        raise AssertionError(f"collector did not start: {line!r}")
    return RunningCollector(line.split()[-1], db, process)


def stop_collector(collector: RunningCollector) -> None:
    if collector.process.poll() is None:
        collector.process.terminate()
        try:
            collector.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            collector.process.kill()
            collector.process.wait()


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[RunningCollector]:
    running = start_collector(tmp_path / "traces.db", "--max-body-bytes", str(1 << 20))
    try:
        yield running
    finally:
        stop_collector(running)


@pytest.fixture
def jaeger() -> Iterator[str]:
    """The base URL of a fake Jaeger query service (tests/tracing/fake_jaeger.py)."""
    with serving() as url:
        yield url
