"""memlens.tracing.store: round trip, code locations (current and deprecated attributes),
retention by age and by count, and clear errors for files that are not trace stores."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from memlens.tracing.store import SpanRecord, TraceStore, TraceStoreError, code_location_of


def _span(i: int, **attributes: object) -> SpanRecord:
    return SpanRecord(
        trace_id=f"{i + 1:032x}",
        span_id=f"{i + 1:016x}",
        parent_span_id=None,
        name=f"s{i}",
        kind=2,
        service="svc",
        start_ns=1_000 + i,
        end_ns=2_000_000 + i,
        attributes=dict(attributes),
    )


def test_round_trip_and_code_location_queries(tmp_path: Path) -> None:
    with TraceStore(tmp_path / "t.db") as store:
        store.insert(
            [
                _span(0, **{"code.file.path": "/a.py", "code.line.number": 3}),
                _span(1, **{"code.filepath": "/a.py", "code.lineno": 3, "code.function": "f"}),
                _span(2, **{"code.filepath": "/b.py", "code.lineno": 9}),
                _span(3),
            ]
        )
        assert store.count() == 4
        assert store.trace(f"{1:032X}") == [
            _span(0, **{"code.file.path": "/a.py", "code.line.number": 3})
        ]
        assert {s.name for s in store.spans_at("/a.py", 3)} == {"s0", "s1"}
        assert [s.name for s in store.spans_at("/b.py")] == ["s2"]
        located = list(store.code_durations())
        assert [(p, line) for p, line, *_ in located] == [("/a.py", 3), ("/a.py", 3), ("/b.py", 9)]
        assert store.recent_trace_ids(2) == [f"{4:032x}", f"{3:032x}"]
    with sqlite3.connect(tmp_path / "t.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_code_location_prefers_current_attributes() -> None:
    assert code_location_of(
        {"code.file.path": "/new.py", "code.filepath": "/old.py", "code.lineno": "7"}
    ) == ("/new.py", 7, None)
    assert code_location_of({"code.lineno": "x"}) == (None, None, None)


def test_retention_by_count_then_age(tmp_path: Path) -> None:
    with TraceStore(tmp_path / "t.db") as store:
        store.insert(_span(i) for i in range(10))
        store.insert(_span(i) for i in range(10, 15))
        assert store.retain(max_spans=5) == 10
        assert {s.name for s in store.spans_between(0, 10**12)} == {f"s{i}" for i in range(10, 15)}
        assert store.retain(max_age_s=3600) == 0
        assert store.retain(max_age_s=0) == 5
        assert store.count() == 0


def test_not_a_trace_store(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"x" * 4096)
    with pytest.raises(TraceStoreError, match="not a memlens trace database"):
        TraceStore(junk)
    with pytest.raises(TraceStoreError, match="memlens collector"):
        TraceStore(tmp_path / "missing.db", readonly=True)
