"""A real ``memlens collector`` process on a free loopback port."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


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
