"""The ``run-memory`` diagnostic: a service started with ``memlens run`` had more resident
memory than ``memlens.memoryBudget``. The peak is the operating system's high-water mark
the process reports beside its samples (:attr:`MemoryPeak.peak_rss_bytes`), so a spike
shorter than the sampling interval counts. It sits on the script's ``if __name__ ==
"__main__":`` line (else its first line) and names the process's peak and latest sample;
only the newest process of each script counts, so a restart that fits clears it. It
refreshes with the trace store (the server refreshes diagnostics when traces change)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.uris import to_fs_path

from memlens.lsp_server.analysis import Position, Span
from memlens.tracing.records import MemoryPeak
from memlens.units import format_bytes

if TYPE_CHECKING:
    from memlens.lsp_server.server import MemlensServer

__all__ = ["RUN_MEMORY_CODE", "entry_line", "register", "run_memory_diagnostics"]

RUN_MEMORY_CODE = "run-memory"
_MAIN_GUARD = re.compile(r"""^if\s+__name__\s*==\s*['"]__main__['"]\s*:""")


def entry_line(lines: list[str]) -> int:
    """The 0-based line of the main guard, else 0."""
    return next((i for i, text in enumerate(lines) if _MAIN_GUARD.match(text)), 0)


def _newest_per_entry(peaks: list[MemoryPeak]) -> dict[str, MemoryPeak]:
    newest: dict[str, MemoryPeak] = {}
    for peak in peaks:
        if peak.entry_point is None:
            continue
        key = str(Path(peak.entry_point).resolve())
        if key not in newest or peak.latest_ns > newest[key].latest_ns:
            newest[key] = peak
    return newest


def run_memory_diagnostics(ls: MemlensServer, uri: str) -> list[types.Diagnostic]:
    """The diagnostic for this document when it is an over-budget ``memlens run`` target."""
    path = to_fs_path(uri)
    if not ls.traces.active or path is None:
        return []
    peak = _newest_per_entry(ls.traces.memory_peaks).get(str(Path(path).resolve()))
    budget = ls.settings.budget_bytes
    if peak is None or peak.peak_rss_bytes <= budget:
        return []
    lines = ls.lines(uri)
    line = entry_line(lines)
    end = len(lines[line]) if line < len(lines) else 0
    at = ls.to_lsp_range(uri, Span(Position(line, 0), Position(line, end)))
    return [
        types.Diagnostic(
            range=at,
            message=(
                f"{peak.service} (pid {peak.pid}) reached {format_bytes(peak.peak_rss_bytes)} "
                f"resident memory under `memlens run`, over the {format_bytes(budget)} memory "
                f"budget (latest sample {format_bytes(peak.latest_rss_bytes)})"
            ),
            severity=types.DiagnosticSeverity.Warning,
            source="memlens",
            code=RUN_MEMORY_CODE,
            data={"pid": peak.pid, "peak_rss_bytes": peak.peak_rss_bytes},
        )
    ]


def register(server: MemlensServer) -> None:
    """Adds the ``run-memory`` diagnostic to the document's diagnostics."""
    server.diagnostics_providers.append(run_memory_diagnostics)
