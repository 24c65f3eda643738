"""Services run under a real ``memlens run``, and where their spans say they were made."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from memlens.tracing.records import SpanRecord
from tests.support.collector_process import RunningCollector


def line_of(source: str, text: str) -> int:
    """The number of the first line of ``source`` that holds ``text``."""
    return next(i for i, line in enumerate(source.splitlines(), 1) if text in line)


def run_traced(collector: RunningCollector, cwd: Path, *command: str) -> subprocess.Popen[str]:
    """Start ``memlens run`` (memory sampling off) sending to ``collector``; stdout and
    stderr together on the process's stdout."""
    return subprocess.Popen(
        [sys.executable, "-m", "memlens", "run", "--endpoint", collector.endpoint, "--", *command],
        cwd=cwd,
        env={**os.environ, "MEMLENS_MEMORY": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def location_of(span: SpanRecord) -> tuple[object, object, object]:
    """The span's (path, line, function) attributes, None where one is missing."""
    return tuple(
        span.attributes.get(key)
        for key in ("code.file.path", "code.line.number", "code.function.name")
    )  # type: ignore[return-value]
