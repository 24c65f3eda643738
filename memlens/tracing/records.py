"""What the trace store holds: spans as OTLP gives them, their rows as the store writes
them, and the memory samples (and peaks) of processes under ``memlens run``.

Ids are lowercase hex (32 digits for traces, 16 for spans); times are Unix nanoseconds, as
in OTLP. The code location of a span is taken from the current
``code.file.path``/``code.line.number``/``code.function.name`` attributes or, for older
instrumentation, the deprecated ``code.filepath``/``code.lineno``/``code.function``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "STATUS_ERROR",
    "MemoryPeak",
    "MemorySample",
    "SpanRecord",
    "SpanRow",
    "code_location_of",
    "encode_json",
    "span_row",
]

encode_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
"""How rows hold JSON (compact, non-ASCII kept); one encoder for every row, as
``json.dumps`` with options builds a new one per call."""

STATUS_ERROR = 2
"""OTLP ``Status.code`` of a failed span."""


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
        _line_number(line),
        str(function) if function is not None else None,
    )


def _line_number(value: object) -> int | None:
    """A line number however an exporter sent it (``14``, ``14.0``, ``" 14"``): a whole
    number from 1 that SQLite's integer column holds; None for anything else (``0.5``,
    ``"²"``, 30 digits, a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    if isinstance(value, str) and "_" in value:  # float() reads "1_4"; no exporter writes it
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    if not number.is_integer() or not 1 <= number < 2**31:
        return None
    return int(number)


class SpanRow(NamedTuple):
    """A span as the store writes it: the columns of ``spans`` but ``received_ns``, in
    order, with the code location extracted and attributes, resource and events
    JSON-encoded. The collector builds these straight from protobuf
    (:func:`memlens.tracing.otlp.span_rows`); :func:`span_row` is the reference."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    service: str
    start_ns: int
    end_ns: int
    status_code: int
    status_message: str
    code_path: str | None
    code_line: int | None
    code_function: str | None
    attributes: str
    """JSON object."""
    resource: str
    """JSON object."""
    events: str
    """JSON array."""


def span_row(span: SpanRecord, resource_json: str | None = None) -> SpanRow:
    """The row of one span; ``resource_json`` reuses an encoding of ``span.resource``."""
    path, line, function = code_location_of(span.attributes)
    return SpanRow(
        span.trace_id,
        span.span_id,
        span.parent_span_id,
        span.name,
        span.kind,
        span.service,
        span.start_ns,
        span.end_ns,
        span.status_code,
        span.status_message,
        path,
        line,
        function,
        encode_json(span.attributes),
        encode_json(span.resource) if resource_json is None else resource_json,
        encode_json(span.events),
    )


@dataclass(frozen=True)
class MemorySample:
    """One memory reading of a traced process (OTLP metrics sent by ``memlens run``)."""

    service: str
    pid: int
    entry_point: str | None
    """Absolute path of the script ``memlens run`` launched, or None if unknown."""
    time_ns: int
    """When it was read, Unix nanoseconds."""
    rss_bytes: int
    """Resident set size, bytes."""
    cuda_allocated_bytes: int | None = None
    """Bytes held by tensors in torch's CUDA caching allocator; None without CUDA."""
    cuda_reserved_bytes: int | None = None
    """Bytes the CUDA caching allocator holds from the driver; None without CUDA."""
    peak_rss_bytes: int | None = None
    """The most resident memory the process has had since it started, bytes, as the
    operating system counts it (Linux ``VmHWM``): it catches a spike shorter than the
    sampling interval. None where the process did not report it."""


@dataclass(frozen=True)
class MemoryPeak:
    """The memory of one traced process (service, pid): its peak and its latest sample."""

    service: str
    entry_point: str | None
    """Absolute path of the script ``memlens run`` launched, or None if unknown."""
    pid: int
    peak_rss_bytes: int
    """The most resident memory the process had, bytes: the operating system's high-water
    mark where the process reported it (a spike between two samples counts), never less
    than the largest sample."""
    latest_rss_bytes: int
    """Resident set size at the latest sample, bytes."""
    latest_ns: int
    """Unix nanoseconds of the latest sample."""
