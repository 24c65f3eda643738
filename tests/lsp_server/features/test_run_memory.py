"""memlens.lsp_server.features.run_memory: where the run-memory diagnostic sits, and that
it counts a spike shorter than the sampling interval, measured from a real ``memlens run``
process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from lsprotocol import types
from pygls.uris import from_fs_path

from memlens.lsp_server.analysis import Span
from memlens.lsp_server.features.run_memory import entry_line, run_memory_diagnostics
from memlens.tracing.records import MemoryPeak
from memlens.tracing.store import TraceStore
from tests.support.collector_process import start_collector, stop_collector

if TYPE_CHECKING:
    from memlens.lsp_server.server import MemlensServer

MiB = 1024 * 1024
SPIKE = textwrap.dedent(
    """
    import time
    time.sleep(0.3)
    spike = bytearray(256 * 1024 * 1024)  # touched, then freed within one interval
    del spike
    time.sleep(0.5)

    if __name__ == "__main__":
        pass
    """
)


def test_entry_line_is_the_main_guard_else_the_first_line() -> None:
    assert entry_line(["import os", "", "if __name__ == '__main__':", "    main()"]) == 2
    assert entry_line(['if __name__=="__main__":']) == 0
    assert entry_line(["import os", "main()"]) == 0
    assert entry_line(["    if __name__ == '__main__':"]) == 0  # nested: not the entry


@dataclass
class _Traces:
    memory_peaks: list[MemoryPeak]
    active: bool = True


@dataclass
class _Settings:
    budget_bytes: int


@dataclass
class _Server:
    """What run_memory_diagnostics reads of the server: the trace watch's peaks, the
    budget, and the document's lines (positions are plain code points here)."""

    traces: _Traces
    settings: _Settings
    text: dict[str, list[str]] = field(default_factory=dict)

    def lines(self, uri: str) -> list[str]:
        return self.text[uri]

    def to_lsp_range(self, uri: str, span: Span) -> types.Range:
        return types.Range(
            types.Position(span.start.line, span.start.col),
            types.Position(span.end.line, span.end.col),
        )


def test_a_spike_between_two_samples_raises_the_diagnostic(tmp_path: Path) -> None:
    # regression: the diagnostic used the largest sample, and a spike between readings
    # (here the only reading is the one at exit) never crossed the budget
    script = tmp_path / "spike.py"
    script.write_text(SPIKE)
    collector = start_collector(tmp_path / "traces.db")
    try:
        result = subprocess.run(
            [
                *(sys.executable, "-m", "memlens", "run", "--memory-interval", "5"),
                *("--endpoint", collector.endpoint, "--", sys.executable, str(script)),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
    finally:
        stop_collector(collector)
    with TraceStore(collector.db, readonly=True) as store:
        peaks = store.memory_peaks()
    (peak,) = peaks
    assert peak.latest_rss_bytes < 160 * MiB < peak.peak_rss_bytes  # sampled under, peaked over
    uri = from_fs_path(str(script))
    assert uri is not None
    server = _Server(_Traces(peaks), _Settings(160 * MiB), {uri: SPIKE.splitlines()})
    (diagnostic,) = run_memory_diagnostics(cast("MemlensServer", server), uri)
    assert diagnostic.code == "run-memory"
    assert diagnostic.range.start.line == entry_line(SPIKE.splitlines())
    assert "over the 160.0 MiB memory budget" in diagnostic.message
    assert diagnostic.data == {"pid": peak.pid, "peak_rss_bytes": peak.peak_rss_bytes}
    within = _Server(_Traces(peaks), _Settings(peak.peak_rss_bytes), {uri: SPIKE.splitlines()})
    assert run_memory_diagnostics(cast("MemlensServer", within), uri) == []
