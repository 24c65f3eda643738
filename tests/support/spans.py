"""Spans of one made-up trace, in milliseconds, for topology and trace-view tests."""

from __future__ import annotations

from memlens.tracing.records import SpanRecord

T = "ab" * 16
MS = 1_000_000


def span(
    sid: int,
    parent: int | None,
    service: str,
    kind: int,
    start_ms: int,
    dur_ms: int,
    *,
    error: bool = False,
    trace_id: str = T,
    attributes: dict[str, object] | None = None,
    **more_attributes: object,
) -> SpanRecord:
    return SpanRecord(
        trace_id=trace_id,
        span_id=f"{sid:016x}",
        parent_span_id=f"{parent:016x}" if parent is not None else None,
        name=f"{service}-{sid}",
        kind=kind,
        service=service,
        start_ns=start_ms * MS,
        end_ns=(start_ms + dur_ms) * MS,
        status_code=2 if error else 0,
        attributes={**(attributes or {}), **more_attributes},
    )
