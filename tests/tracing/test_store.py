"""memlens.tracing.store: round trip, code-location queries (current and deprecated
attributes), retention by age and by count, memory samples and their peaks, the migration
from schema version 1, and clear errors for files that are not trace stores."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from memlens.tracing.records import MemoryPeak, MemorySample, SpanRecord
from memlens.tracing.store import TraceStore, TraceStoreError


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


_V1_SCHEMA = """
CREATE TABLE spans (
    trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_span_id TEXT, name TEXT NOT NULL,
    kind INTEGER NOT NULL, service TEXT NOT NULL, start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL, status_code INTEGER NOT NULL, status_message TEXT NOT NULL,
    code_path TEXT, code_line INTEGER, code_function TEXT, attributes TEXT NOT NULL,
    resource TEXT NOT NULL, events TEXT NOT NULL, received_ns INTEGER NOT NULL,
    PRIMARY KEY (trace_id, span_id)
) WITHOUT ROWID;
CREATE INDEX spans_start ON spans (start_ns);
CREATE INDEX spans_received ON spans (received_ns);
CREATE INDEX spans_code ON spans (code_path, code_line, start_ns, end_ns, trace_id, code_function);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO spans VALUES ('00000000000000000000000000000001', '0000000000000001', NULL, 'old',
    2, 'svc', 1000, 2000, 0, '', '/a.py', 3, 'f', '{"code.file.path":"/a.py",
    "code.line.number":3,"code.function.name":"f"}', '{"service.name":"svc"}', '[]', 777);
"""


def test_a_version_1_store_is_read_as_is_and_migrated_by_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(_V1_SCHEMA)
    with TraceStore(path, readonly=True) as old:
        assert [s.name for s in old.trace(f"{1:032x}")] == ["old"]
        assert old.memory_peaks() == []
        assert old.latest_received_ns() == 777
    with TraceStore(path) as store:  # migrates
        assert [(p, line, f) for p, line, f, *_ in store.code_durations("/a.py")] == [
            ("/a.py", 3, "f")
        ]
        store.insert([_span(5)])
        store.insert_samples([_sample(1, time_ns=10, rss=5)])
        assert store.count() == 2 and len(store.memory_peaks()) == 1
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta").fetchone() == ("3",)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "spans_v1" not in tables and {"spans_code", "memory_samples"} <= tables
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '4'")
    with pytest.raises(TraceStoreError, match="schema 4"):
        TraceStore(path, readonly=True)


def _sample(pid: int, time_ns: int, rss: int, service: str = "svc") -> MemorySample:
    return MemorySample(service, pid, f"/srv/{service}.py", time_ns, rss, None, None)


def test_memory_peaks_per_process_newest_first(tmp_path: Path) -> None:
    with TraceStore(tmp_path / "t.db") as store:
        assert store.memory_peaks() == [] and store.latest_received_ns() == 0
        store.insert_samples(
            [
                _sample(1, time_ns=100, rss=50),
                _sample(1, time_ns=200, rss=90),
                _sample(1, time_ns=300, rss=70),
                _sample(2, time_ns=250, rss=10, service="gen"),
                MemorySample("gen", 3, None, 150, 8, cuda_allocated_bytes=4),
            ]
        )
        after_samples = store.latest_received_ns()
        assert after_samples > 0
        assert store.memory_peaks() == [
            MemoryPeak("svc", "/srv/svc.py", 1, 90, 70, 300),
            MemoryPeak("gen", "/srv/gen.py", 2, 10, 10, 250),
            MemoryPeak("gen", None, 3, 8, 8, 150),
        ]
        # since_ns: the peak over the later samples only
        assert store.memory_peaks(since_ns=210) == [
            MemoryPeak("svc", "/srv/svc.py", 1, 70, 70, 300),
            MemoryPeak("gen", "/srv/gen.py", 2, 10, 10, 250),
        ]
        store.insert([_span(0)])
        assert store.latest_received_ns() >= after_samples
        assert store.retain(max_samples=2) == 3
        assert [p.pid for p in store.memory_peaks()] == [2, 3]  # the last two inserted
        assert store.retain(max_age_s=0) == 3  # the span and both samples
        assert store.memory_peaks() == [] and store.count() == 0


_V2_SAMPLES = """
CREATE TABLE memory_samples (
    service TEXT NOT NULL, pid INTEGER NOT NULL, entry_point TEXT, time_ns INTEGER NOT NULL,
    rss_bytes INTEGER NOT NULL, cuda_allocated_bytes INTEGER, cuda_reserved_bytes INTEGER,
    received_ns INTEGER NOT NULL
);
UPDATE meta SET value = '2';
INSERT INTO memory_samples VALUES ('svc', 1, '/srv/svc.py', 100, 40, NULL, NULL, 5);
"""


def test_a_version_2_store_is_read_as_is_and_gains_the_os_peak_when_migrated(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v2.db"
    with TraceStore(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE memory_samples")
        conn.executescript(_V2_SAMPLES)
    with TraceStore(path, readonly=True) as old:
        assert old.memory_peaks() == [MemoryPeak("svc", "/srv/svc.py", 1, 40, 40, 100)]
    with TraceStore(path) as store:  # migrates: the old sample stays, new ones carry a peak
        store.insert_samples([MemorySample("svc", 1, "/srv/svc.py", 200, 30, peak_rss_bytes=90)])
        assert store.memory_peaks() == [MemoryPeak("svc", "/srv/svc.py", 1, 90, 30, 200)]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta").fetchone() == ("3",)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_memory_peak_is_the_os_high_water_mark_when_sent_else_the_largest_sample(
    tmp_path: Path,
) -> None:
    # regression: a spike between two samples was missed (the peak was the largest sample)
    with TraceStore(tmp_path / "t.db") as store:
        store.insert_samples(
            [
                MemorySample("svc", 1, None, 100, 50, peak_rss_bytes=60),
                MemorySample("svc", 1, None, 200, 40, peak_rss_bytes=500),  # spike in between
                MemorySample("svc", 1, None, 300, 45, peak_rss_bytes=500),
                MemorySample("old", 2, None, 100, 70),  # a process that sends no peak
                MemorySample("odd", 3, None, 100, 80, peak_rss_bytes=20),  # peak below a sample
            ]
        )
        assert sorted(store.memory_peaks(), key=lambda p: p.pid) == [
            MemoryPeak("svc", None, 1, 500, 45, 300),
            MemoryPeak("old", None, 2, 70, 70, 100),
            MemoryPeak("odd", None, 3, 80, 80, 100),
        ]
