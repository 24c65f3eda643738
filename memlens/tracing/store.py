"""The trace store: spans as OTLP gives them, in one SQLite file (WAL mode).

Written only by the collector (batched, one transaction per batch), read by the CLI and the
language server. Ids are lowercase hex (32 digits for traces, 16 for spans); times are
Unix nanoseconds, as in OTLP. The code location of a span is taken from the current
``code.file.path``/``code.line.number``/``code.function.name`` attributes or, for older
instrumentation, the deprecated ``code.filepath``/``code.lineno``/``code.function``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memlens.errors import MemlensError

__all__ = [
    "SpanRecord",
    "TraceStore",
    "TraceStoreError",
    "code_location_of",
]

_SCHEMA_VERSION = 1
_SCHEMA = """
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
    received_ns INTEGER NOT NULL,
    PRIMARY KEY (trace_id, span_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS spans_start ON spans (start_ns);
CREATE INDEX IF NOT EXISTS spans_received ON spans (received_ns);
-- covering: the code-lens query (count, p50/p95, latest trace per line) never reads the table
CREATE INDEX IF NOT EXISTS spans_code
    ON spans (code_path, code_line, start_ns, end_ns, trace_id, code_function);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_COLUMNS = (
    "trace_id, span_id, parent_span_id, name, kind, service, start_ns, end_ns, status_code, "
    "status_message, code_path, code_line, code_function, attributes, resource, events"
)

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
"""One encoder for every row: ``json.dumps`` with options builds a new one per call."""

STATUS_ERROR = 2
"""OTLP ``Status.code`` of a failed span."""


class TraceStoreError(MemlensError):
    """The trace database cannot be opened or is not a memlens trace store."""


@dataclass(frozen=True)
class SpanRecord:
    """One span as OTLP gives it; ids lowercase hex, times in Unix nanoseconds."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    """OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer (0 unspecified)."""
    service: str
    start_ns: int
    end_ns: int
    status_code: int = 0
    """OTLP StatusCode: 0 unset, 1 ok, 2 error."""
    status_message: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duration_ms(self) -> float:
        """End minus start, in milliseconds."""
        return (self.end_ns - self.start_ns) / 1e6

    @property
    def is_error(self) -> bool:
        """Whether the span's status is ERROR."""
        return self.status_code == STATUS_ERROR


def code_location_of(attributes: dict[str, Any]) -> tuple[str | None, int | None, str | None]:
    """(path, line, function) from current or deprecated ``code.*`` attributes."""
    path = attributes.get("code.file.path", attributes.get("code.filepath"))
    line = attributes.get("code.line.number", attributes.get("code.lineno"))
    function = attributes.get("code.function.name", attributes.get("code.function"))
    return (
        str(path) if path is not None else None,
        int(line) if isinstance(line, int | float | str) and str(line).isdigit() else None,
        str(function) if function is not None else None,
    )


class TraceStore:
    """A SQLite trace database; one connection, used from one thread at a time."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
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
                self._db.executescript(_SCHEMA)
                self._db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                    (str(_SCHEMA_VERSION),),
                )
                self._db.commit()
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise TraceStoreError(
                f"{self.path} is not a memlens trace database ({exc}); "
                "point --db at another file or delete it"
            ) from exc
        if row is None or int(row[0]) != _SCHEMA_VERSION:
            raise TraceStoreError(
                f"{self.path} has trace schema {row[0] if row else 'none'}, this memlens "
                f"reads {_SCHEMA_VERSION}; delete the file to start over"
            )

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
        now = time.time_ns()
        rows = []
        resources: dict[int, str] = {}  # spans of one OTLP request share their resource dict
        for s in spans:
            path, line, function = code_location_of(s.attributes)
            resource = resources.get(id(s.resource))
            if resource is None:
                resource = resources[id(s.resource)] = _encode(s.resource)
            rows.append(
                (
                    s.trace_id,
                    s.span_id,
                    s.parent_span_id,
                    s.name,
                    s.kind,
                    s.service,
                    s.start_ns,
                    s.end_ns,
                    s.status_code,
                    s.status_message,
                    path,
                    line,
                    function,
                    _encode(s.attributes),
                    resource,
                    _encode(s.events) if s.events else "[]",
                    now,
                )
            )
        with self._transaction() as db:
            db.executemany(
                f"INSERT OR REPLACE INTO spans ({_COLUMNS}, received_ns) "
                f"VALUES ({', '.join('?' * 17)})",
                rows,
            )
        return len(rows)

    def retain(self, *, max_age_s: float | None = None, max_spans: int | None = None) -> int:
        """Delete spans received more than ``max_age_s`` seconds ago, then the oldest beyond
        ``max_spans``. Returns how many were deleted."""
        deleted = 0
        with self._transaction() as db:
            if max_age_s is not None:
                cutoff = time.time_ns() - int(max_age_s * 1e9)
                deleted += db.execute("DELETE FROM spans WHERE received_ns < ?", (cutoff,)).rowcount
            if max_spans is not None:
                (count,) = db.execute("SELECT COUNT(*) FROM spans").fetchone()
                if count > max_spans:
                    deleted += db.execute(
                        "DELETE FROM spans WHERE (trace_id, span_id) IN (SELECT trace_id, "
                        "span_id FROM spans ORDER BY received_ns, start_ns LIMIT ?)",
                        (count - max_spans,),
                    ).rowcount
        return deleted

    # -- reads ----------------------------------------------------------------------------

    def count(self) -> int:
        """How many spans are stored."""
        (n,) = self._db.execute("SELECT COUNT(*) FROM spans").fetchone()
        return int(n)

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
    ) -> Iterator[tuple[str, int, str | None, str, int, int]]:
        """(path, line, function, trace_id, start_ns, duration_ns) of located spans, optionally
        of one file, ordered by location then start time."""
        where = "WHERE code_path IS NOT NULL" + (" AND code_path = ?" if path else "")
        rows = self._db.execute(
            "SELECT code_path, code_line, code_function, trace_id, start_ns, end_ns - start_ns "
            f"FROM spans {where} ORDER BY code_path, code_line, start_ns",
            (path,) if path else (),
        )
        for p, line, function, trace_id, start, duration in rows:
            yield p, int(line or 0), function, trace_id, start, duration


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
