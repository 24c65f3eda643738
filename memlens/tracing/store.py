"""The trace store: the spans and memory samples of :mod:`memlens.tracing.records` in one
SQLite file (WAL mode), with its schema, migration, retention and queries.

Written only by the collector (batched, one transaction per batch), read by the CLI and the
language server (:meth:`TraceStore.latest_received_ns` to poll, :meth:`TraceStore.memory_peaks`
for memory budgets).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from memlens.errors import MemlensError
from memlens.tracing.records import (
    STATUS_ERROR,
    MemoryPeak,
    MemorySample,
    SpanRecord,
    SpanRow,
    encode_json,
    span_row,
)

__all__ = ["TraceStore", "TraceStoreError"]

_SCHEMA_VERSION = 3
_READABLE_VERSIONS = (1, 2, 3)
"""Version 1 (spans only, a WITHOUT ROWID table) and version 2 (samples without the OS's
peak) are read as they are and migrated on the first writable open."""
_SPANS = """
CREATE TABLE IF NOT EXISTS spans (
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT,
    name TEXT NOT NULL,
    kind INTEGER NOT NULL,
    service TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    status_code INTEGER NOT NULL,
    status_message TEXT NOT NULL,
    code_path TEXT,
    code_line INTEGER,
    code_function TEXT,
    attributes TEXT NOT NULL,
    resource TEXT NOT NULL,
    events TEXT NOT NULL,
    received_ns INTEGER NOT NULL
);
-- a rowid table: rows are appended in arrival order, so a batch writes few, full pages
-- (version 1 kept whole rows in the random-order primary key's b-tree)
CREATE UNIQUE INDEX IF NOT EXISTS spans_id ON spans (trace_id, span_id);
CREATE INDEX IF NOT EXISTS spans_start ON spans (start_ns);
CREATE INDEX IF NOT EXISTS spans_received ON spans (received_ns);
-- covering: the code-lens query (count, p50/p95, latest trace per line) never reads the
-- table. Keyed by file then time, not file then line: a batch appends at the end of each
-- file's run instead of updating a page per line (version 1: 3x the pages written per span)
CREATE INDEX IF NOT EXISTS spans_code
    ON spans (code_path, start_ns, code_line, end_ns, trace_id, code_function);
"""
_SAMPLES = """
CREATE TABLE IF NOT EXISTS memory_samples (
    service TEXT NOT NULL,
    pid INTEGER NOT NULL,
    entry_point TEXT,
    time_ns INTEGER NOT NULL,
    rss_bytes INTEGER NOT NULL,
    cuda_allocated_bytes INTEGER,
    cuda_reserved_bytes INTEGER,
    received_ns INTEGER NOT NULL,
    peak_rss_bytes INTEGER
);
CREATE INDEX IF NOT EXISTS memory_process ON memory_samples (service, pid, time_ns);
CREATE INDEX IF NOT EXISTS memory_received ON memory_samples (received_ns);
"""
_WAL_KEEP_BYTES = 64 * 1024 * 1024
"""A write-ahead log larger than this is truncated back to it after a checkpoint."""
_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
_MIGRATE_FROM_1 = """
DROP INDEX IF EXISTS spans_start;
DROP INDEX IF EXISTS spans_received;
DROP INDEX IF EXISTS spans_code;
ALTER TABLE spans RENAME TO spans_v1;
"""
_MIGRATE_FROM_2 = "ALTER TABLE memory_samples ADD COLUMN peak_rss_bytes INTEGER;"
_COLUMNS = ", ".join(SpanRow._fields)
"""The columns of ``spans`` but ``received_ns``, in the order of a :class:`SpanRow`."""

"""Encodes the resource that the spans of one request share, once for all of them."""


class TraceStoreError(MemlensError):
    """The trace database cannot be opened or is not a memlens trace store."""


class TraceStore:
    """A SQLite trace database; one connection, used from one thread at a time."""

    def __init__(
        self, path: str | Path, *, readonly: bool = False, auto_checkpoint: bool = True
    ) -> None:
        """Open (creating or migrating unless ``readonly``) the store at ``path``.

        ``auto_checkpoint=False`` leaves copying the write-ahead log into the database, and
        its fsyncs, to :meth:`checkpoint` calls from another connection: the collector's
        writer then never waits for the disk.
        """
        self.path = Path(path)
        try:
            if readonly:
                if not self.path.exists():
                    raise TraceStoreError(
                        f"no trace database at {self.path}; start `memlens collector` "
                        "and run services under `memlens run`, or pass --db"
                    )
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, timeout=10.0)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, timeout=10.0)
                self._db.execute("PRAGMA journal_mode=WAL")
                # WAL + NORMAL: a committed transaction survives the process being killed
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute(f"PRAGMA journal_size_limit={_WAL_KEEP_BYTES}")
                if not auto_checkpoint:
                    self._db.execute("PRAGMA wal_autocheckpoint=0")
                self._create_or_migrate()
            version = self._version()
        except sqlite3.DatabaseError as exc:
            raise TraceStoreError(
                f"{self.path} is not a memlens trace database ({exc}); "
                "point --db at another file or delete it"
            ) from exc
        if version not in _READABLE_VERSIONS:
            raise TraceStoreError(
                f"{self.path} has trace schema {version or 'none'}, this memlens reads "
                f"{', '.join(map(str, _READABLE_VERSIONS))}; delete the file to start over"
            )
        self._has_samples = version >= 2
        self._has_peaks = version >= 3

    def _version(self) -> int | None:
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else None

    def _create_or_migrate(self) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")  # one writer migrates; the others wait, then see it done
        try:
            db.execute(_META)
            version = self._version()
            if version in (None, 1, 2):
                # not executescript: it would commit the transaction first
                script = {None: "", 1: _MIGRATE_FROM_1, 2: _MIGRATE_FROM_2}[version]
                if version != 2:
                    script += _SPANS + _SAMPLES
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                if version == 1:
                    db.execute(f"INSERT INTO spans SELECT {_COLUMNS}, received_ns FROM spans_v1")
                    db.execute("DROP TABLE spans_v1")
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                    (str(_SCHEMA_VERSION),),
                )
            db.commit()
        except BaseException:
            db.rollback()
            raise

    def checkpoint(self, *, truncate: bool = False) -> int:
        """Copy committed log pages into the database file (SQLite ``PASSIVE``: waits for
        no one), or with ``truncate`` wait for writers and empty the log. Returns the pages
        left in the log."""
        mode = "TRUNCATE" if truncate else "PASSIVE"
        busy, log_pages, done = self._db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        return int(max(log_pages - (0 if busy else done), 0))  # -1, -1 when not in WAL mode

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._db:
            yield self._db

    # -- writes ---------------------------------------------------------------------------

    def insert(self, spans: Iterable[SpanRecord]) -> int:
        """Write spans in one transaction; a span seen before is replaced. Returns the count."""
        rows = []
        resources: dict[int, str] = {}  # spans of one OTLP request share their resource dict
        for s in spans:
            resource = resources.get(id(s.resource))
            if resource is None:
                resource = resources[id(s.resource)] = encode_json(s.resource)
            rows.append(span_row(s, resource))
        return self.insert_rows(rows)

    def insert_rows(self, rows: Sequence[SpanRow]) -> int:
        """Write prepared rows (see :data:`SpanRow`) in one transaction, replacing spans
        seen before. Returns the count."""
        with self._transaction() as db:
            # the arrival time is one literal for the batch: no per-row tuple copies
            db.executemany(
                f"INSERT OR REPLACE INTO spans ({_COLUMNS}, received_ns) "
                f"VALUES ({', '.join('?' * len(SpanRow._fields))}, {time.time_ns()})",
                rows,
            )
        return len(rows)

    def insert_samples(self, samples: Iterable[MemorySample]) -> int:
        """Write memory samples in one transaction. Returns the count."""
        now = time.time_ns()
        rows = [
            (
                m.service,
                m.pid,
                m.entry_point,
                m.time_ns,
                m.rss_bytes,
                m.cuda_allocated_bytes,
                m.cuda_reserved_bytes,
                now,
                m.peak_rss_bytes,
            )
            for m in samples
        ]
        with self._transaction() as db:
            db.executemany("INSERT INTO memory_samples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def retain(
        self,
        *,
        max_age_s: float | None = None,
        max_spans: int | None = None,
        max_samples: int | None = None,
    ) -> int:
        """Delete spans and memory samples received more than ``max_age_s`` seconds ago,
        then the oldest spans beyond ``max_spans`` and the oldest samples beyond
        ``max_samples``. Returns how many rows were deleted."""
        deleted = 0
        tables = (("spans", max_spans), ("memory_samples", max_samples))
        with self._transaction() as db:
            for table, limit in tables if self._has_samples else tables[:1]:
                if max_age_s is not None:
                    cutoff = time.time_ns() - int(max_age_s * 1e9)
                    deleted += db.execute(
                        f"DELETE FROM {table} WHERE received_ns < ?", (cutoff,)
                    ).rowcount
                if limit is not None:
                    (count,) = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
                    if count > limit:
                        deleted += db.execute(
                            f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} "
                            "ORDER BY received_ns, rowid LIMIT ?)",
                            (count - limit,),
                        ).rowcount
        return deleted

    # -- reads ----------------------------------------------------------------------------

    def count(self) -> int:
        """How many spans are stored."""
        (n,) = self._db.execute("SELECT COUNT(*) FROM spans").fetchone()
        return int(n)

    def latest_received_ns(self) -> int:
        """When the newest span or memory sample arrived, Unix ns (0 when empty); two index
        look-ups, cheap enough to poll for new data."""
        tables = ("spans", "memory_samples") if self._has_samples else ("spans",)
        latest = 0
        for table in tables:
            (value,) = self._db.execute(f"SELECT MAX(received_ns) FROM {table}").fetchone()
            latest = max(latest, value or 0)
        return latest

    def memory_peaks(self, since_ns: int | None = None) -> list[MemoryPeak]:
        """One :class:`MemoryPeak` per (service, pid) over the samples taken at or after
        ``since_ns`` (all when None), the most recently sampled process first."""
        if not self._has_samples:
            return []
        # the OS's high-water mark where the process sent it (a version 2 store has none)
        peak = "MAX(MAX(rss_bytes), COALESCE(MAX(peak_rss_bytes), 0))"
        groups = self._db.execute(
            f"SELECT service, pid, {peak if self._has_peaks else 'MAX(rss_bytes)'}, "
            "MAX(time_ns) FROM memory_samples WHERE time_ns >= ? GROUP BY service, pid",
            (since_ns if since_ns is not None else -(2**63),),
        ).fetchall()
        peaks = []
        for service, pid, peak, latest_ns in groups:
            entry_point, latest_rss = self._db.execute(
                "SELECT entry_point, rss_bytes FROM memory_samples "
                "WHERE service = ? AND pid = ? AND time_ns = ? LIMIT 1",
                (service, pid, latest_ns),
            ).fetchone()
            peaks.append(MemoryPeak(service, entry_point, pid, peak, latest_rss, latest_ns))
        peaks.sort(key=lambda p: p.latest_ns, reverse=True)
        return peaks

    def _select(self, where: str, params: Sequence[Any], tail: str = "") -> list[SpanRecord]:
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM spans {where} {tail}", params)
        return [_record(row) for row in rows]

    def trace(self, trace_id: str) -> list[SpanRecord]:
        """Every span of one trace, by start time."""
        return self._select("WHERE trace_id = ?", (trace_id.lower(),), "ORDER BY start_ns")

    def spans_between(self, start_ns: int, end_ns: int) -> list[SpanRecord]:
        """Spans that started in [start_ns, end_ns), by start time."""
        return self._select(
            "WHERE start_ns >= ? AND start_ns < ?", (start_ns, end_ns), "ORDER BY start_ns"
        )

    def recent_trace_ids(self, limit: int) -> list[str]:
        """The ``limit`` traces whose latest span started last, newest first."""
        rows = self._db.execute(
            "SELECT trace_id FROM spans GROUP BY trace_id ORDER BY MAX(start_ns) DESC LIMIT ?",
            (limit,),
        )
        return [r[0] for r in rows]

    def spans_at(self, path: str, line: int | None = None) -> list[SpanRecord]:
        """Spans whose code location is ``path`` (and ``line``), newest first."""
        if line is None:
            return self._select("WHERE code_path = ?", (path,), "ORDER BY start_ns DESC")
        return self._select(
            "WHERE code_path = ? AND code_line = ?", (path, line), "ORDER BY start_ns DESC"
        )

    def code_durations(
        self, path: str | None = None
    ) -> Iterator[tuple[str, int, str | None, str, int, int, bool]]:
        """(path, line, function, trace_id, start_ns, duration_ns, error) of located spans,
        optionally of one file, ordered by location then start time."""
        where = "WHERE code_path IS NOT NULL" + (" AND code_path = ?" if path else "")
        rows = self._db.execute(
            "SELECT code_path, code_line, code_function, trace_id, start_ns, end_ns - start_ns, "
            f"status_code FROM spans {where} ORDER BY code_path, code_line, start_ns",
            (path,) if path else (),
        )
        for p, line, function, trace_id, start, duration, status in rows:
            yield p, int(line or 0), function, trace_id, start, duration, status == STATUS_ERROR


def _record(row: Sequence[Any]) -> SpanRecord:
    return SpanRecord(
        trace_id=row[0],
        span_id=row[1],
        parent_span_id=row[2],
        name=row[3],
        kind=row[4],
        service=row[5],
        start_ns=row[6],
        end_ns=row[7],
        status_code=row[8],
        status_message=row[9],
        attributes=json.loads(row[13]),
        resource=json.loads(row[14]),
        events=json.loads(row[15]),
    )
