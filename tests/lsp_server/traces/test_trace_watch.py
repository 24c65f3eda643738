"""memlens.lsp_server.traces.trace_watch.TraceWatch without an editor: which collector it starts,
that polling survives an unreadable store, that a stop during a read leaves nothing behind,
and which span paths count for a document (symlinked, relative)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest

from memlens.lsp_server.features.traces import push_trace_report
from memlens.lsp_server.traces import trace_watch
from memlens.lsp_server.traces.trace_watch import STORE_PATH, TraceWatch
from memlens.tracing.records import MemoryPeak, SpanRecord
from memlens.tracing.store import TraceStore

TRACE = "ab" * 16


class FakeCollector:
    """Stands in for CollectorProcess: records the ports it was started on."""

    started: ClassVar[list[int]] = []

    def __init__(self, db: Path, port: int) -> None:
        self.port = port
        self.running = False

    async def start(self) -> None:
        FakeCollector.started.append(self.port)
        self.running = True

    async def stop(self) -> None:
        self.running = False


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace_watch, "POLL_S", 0.02)
    monkeypatch.setattr(trace_watch, "DEBOUNCE_S", 0.02)
    monkeypatch.setattr(trace_watch, "CollectorProcess", FakeCollector)
    FakeCollector.started = []


def _span(i: int, path: str | None = None) -> SpanRecord:
    attributes: dict[str, object] = {}
    if path is not None:
        attributes = {"code.file.path": path, "code.line.number": 3, "code.function.name": "f"}
    return SpanRecord(TRACE, f"{i + 1:016x}", None, "s", 2, "svc", i, i + 5, attributes=attributes)


async def _until(check: object, what: str) -> None:
    assert callable(check)
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_port_change_starts_a_collector_on_the_new_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone else's collector answers on 4317: none is started there; moving to 4318,
    where nothing answers, starts one (it used to stay without a collector)."""
    monkeypatch.setattr(trace_watch, "port_answers", lambda port: port == 4317)
    watch = TraceWatch(on_change=lambda: None, on_error=lambda message: None)
    await watch.configure(True, tmp_path, 4317)
    assert watch.collector is None and FakeCollector.started == []
    await watch.configure(True, tmp_path, 4318)
    assert FakeCollector.started == [4318]
    assert watch.collector is not None and watch.collector.port == 4318
    await watch.configure(True, tmp_path, 4318)
    assert FakeCollector.started == [4318], "same settings, running collector: no restart"
    await watch.stop()
    assert watch.collector is None and not watch.active


async def test_a_collector_that_died_is_started_again_on_reconfigure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trace_watch, "port_answers", lambda port: False)
    watch = TraceWatch(on_change=lambda: None, on_error=lambda message: None)
    await watch.configure(True, tmp_path, 4318)
    assert watch.collector is not None
    watch.collector.running = False  # type: ignore[misc]  # the fake's crash
    await watch.configure(True, tmp_path, 4318)
    assert FakeCollector.started == [4318, 4318]
    await watch.stop()


async def test_polling_survives_a_sqlite_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store whose memory_samples table vanished under the reader raises
    sqlite3.OperationalError; polling logs it and reports the change once it reads again
    (the poll task used to die and never refresh again)."""
    monkeypatch.setattr(trace_watch, "port_answers", lambda port: True)
    db = tmp_path / STORE_PATH
    with TraceStore(db) as store:
        store.insert([_span(0)])
    with sqlite3.connect(db) as raw:
        raw.execute("ALTER TABLE memory_samples RENAME TO hidden")
    changes: list[int] = []
    watch = TraceWatch(on_change=lambda: changes.append(1), on_error=lambda message: None)
    await watch.configure(True, tmp_path, 4317)
    await asyncio.sleep(0.3)
    assert changes == [], "the peaks could not be read: no refresh yet"
    assert watch._task is not None and not watch._task.done(), "polling must go on"
    with sqlite3.connect(db) as raw:
        raw.execute("ALTER TABLE hidden RENAME TO memory_samples")
    await _until(lambda: changes, "the refresh once the store reads again")
    await watch.stop()


async def test_a_stop_during_a_read_leaves_no_peaks_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trace_watch, "port_answers", lambda port: True)
    db = tmp_path / STORE_PATH
    with TraceStore(db) as store:
        store.insert([_span(0)])
    reading, release = threading.Event(), threading.Event()
    peak = MemoryPeak("svc", str(tmp_path / "svc.py"), 7, 10, 10, 1)

    def slow_peaks(self: TraceStore, since_ns: int | None = None) -> list[MemoryPeak]:
        reading.set()
        release.wait(10)
        return [peak]

    monkeypatch.setattr(TraceStore, "memory_peaks", slow_peaks)
    changes: list[int] = []
    watch = TraceWatch(on_change=lambda: changes.append(1), on_error=lambda message: None)
    await watch.configure(True, tmp_path, 4317)
    await _until(reading.is_set, "the poll reading the peaks")
    await watch.stop()
    release.set()
    await asyncio.sleep(0.2)  # the reading thread finishes after the stop
    assert watch.memory_peaks == []
    assert changes == []


async def test_span_paths_resolved_or_relative_to_the_root_match_the_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The editor opens ``link/pkg/mod.py`` through a symlink to the workspace; one span
    names the resolved path (what ``memlens run`` records), another ``pkg/mod.py``
    relative to the root, a third another file."""
    monkeypatch.setattr(trace_watch, "port_answers", lambda port: True)
    real = tmp_path / "real"
    (real / "pkg").mkdir(parents=True)
    (real / "pkg" / "mod.py").write_text("def f():\n    pass\n")
    link = tmp_path / "link"
    link.symlink_to(real)
    with TraceStore(real / STORE_PATH) as store:
        store.insert(
            [
                _span(0, str(real / "pkg" / "mod.py")),
                _span(1, "pkg/mod.py"),
                _span(2, str(real / "pkg" / "other.py")),
            ]
        )
    watch = TraceWatch(on_change=lambda: None, on_error=lambda message: None)
    await watch.configure(True, link, 4317)
    rows = watch.code_rows(str(link / "pkg" / "mod.py"))
    assert sorted(start for _p, _l, _f, _t, start, _d, _error in rows) == [0, 1]
    assert watch.code_rows(str(link / "pkg" / "missing.py")) == []
    await watch.stop()


async def test_an_unreadable_store_gives_no_lenses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bad inputs tried: a store path holding text, not SQLite."""
    monkeypatch.setattr(trace_watch, "port_answers", lambda port: True)
    (tmp_path / STORE_PATH).parent.mkdir()
    (tmp_path / STORE_PATH).write_text("not a database")
    watch = TraceWatch(on_change=lambda: None, on_error=lambda message: None)
    await watch.configure(True, tmp_path, 4317)
    assert watch.code_rows(str(tmp_path / "mod.py")) == []
    await watch.stop()


async def test_a_trace_view_refresh_that_cannot_read_the_store_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The refresh after new spans runs unawaited: an unreadable store (bad input: a text
    file) is a warning, not a task that dies with "exception was never retrieved"; a
    readable one is sent as ``memlens/traceReport``."""
    sent: list[tuple[str, object]] = []
    ls = SimpleNamespace(
        traces=TraceWatch(on_change=lambda: None, on_error=lambda message: None),
        settings=SimpleNamespace(jaeger_url=None),
        protocol=SimpleNamespace(notify=lambda method, params: sent.append((method, params))),
    )
    ls.traces.db = tmp_path / STORE_PATH
    ls.traces.db.parent.mkdir()
    ls.traces.db.write_text("not a database")
    await push_trace_report(ls, None)  # type: ignore[arg-type]
    assert sent == [] and "cannot refresh the trace view" in caplog.text
    ls.traces.db.unlink()
    with TraceStore(ls.traces.db) as store:
        store.insert([_span(0)])
    await push_trace_report(ls, TRACE)  # type: ignore[arg-type]
    ((method, report),) = sent
    assert method == "memlens/traceReport"
    assert isinstance(report, dict) and report["trace"]["trace_id"] == TRACE
