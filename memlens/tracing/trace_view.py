"""The trace view's data: the ``memlens/traceReport`` payload (DESIGN §4), built from the
store. The language server sends it in answer to ``memlens.traces`` and when new spans
arrive; ``memlens traces --report`` prints the same JSON.

Shape: ``{services, edges, traces, trace, jaeger_url}`` where ``edges`` are
:class:`~memlens.tracing.topology.ServiceEdge`, ``traces`` one summary per recent trace
(``start_ms`` Unix milliseconds), and ``trace`` is null or one trace's spans as OTLP/JSON
spans with their ``service``, ``status`` and ``location`` (``{path, line, function}``).
A trace the local store does not hold is read from a team's Jaeger when its URL is given.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from memlens.tracing import jaeger
from memlens.tracing.store import SpanRecord, TraceStore, code_location_of
from memlens.tracing.topology import TraceSummary, recent_traces, service_graph

__all__ = ["DEFAULT_WINDOW_S", "otlp_json_span", "trace_report"]

DEFAULT_WINDOW_S = 3600.0
"""The service graph covers the last hour of spans unless asked otherwise."""


def _any_value(value: Any) -> dict[str, Any]:
    """A Python attribute value as an OTLP/JSON ``AnyValue`` (ints as decimal strings, as
    the OTLP/JSON mapping writes 64-bit integers)."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_any_value(v) for v in value]}}
    if isinstance(value, dict):  # an OTLP kvlist, as the store reads it back
        return {"kvlistValue": {"values": _key_values(value)}}
    if value is None:  # an empty AnyValue
        return {}
    return {"stringValue": str(value)}


def _key_values(attributes: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _any_value(v)} for k, v in attributes.items()]


def otlp_json_span(span: SpanRecord) -> dict[str, Any]:
    """One stored span as the trace view draws it."""
    path, line, function = code_location_of(span.attributes)
    return {
        "traceId": span.trace_id,
        "spanId": span.span_id,
        "parentSpanId": span.parent_span_id or "",
        "name": span.name,
        "kind": span.kind,
        "service": span.service,
        "startTimeUnixNano": str(span.start_ns),
        "endTimeUnixNano": str(span.end_ns),
        "attributes": _key_values(span.attributes),
        "status": {"code": span.status_code, "message": span.status_message},
        "location": (
            {"path": path, "line": line, "function": function}
            if path is not None and line is not None
            else None
        ),
    }


def _summary_json(summary: TraceSummary) -> dict[str, Any]:
    return {
        "trace_id": summary.trace_id,
        "root_service": summary.root_service,
        "root_name": summary.root_name,
        "start_ms": summary.start_ns // 1_000_000,
        "duration_ms": summary.duration_ms,
        "span_count": summary.spans,
        "error_count": summary.errors,
    }


def trace_report(
    store: TraceStore,
    trace_id: str | None = None,
    *,
    limit: int = 20,
    window_s: float = DEFAULT_WINDOW_S,
    jaeger_url: str | None = None,
    now_ns: int | None = None,
) -> dict[str, Any]:
    """The report: the service graph over the last ``window_s`` seconds, the ``limit`` most
    recent traces, and ``trace_id``'s spans when given: from the store, else, with a
    ``jaeger_url``, from that Jaeger's query API (null when neither has it; JaegerError
    when Jaeger cannot be read)."""
    end = time.time_ns() if now_ns is None else now_ns
    edges = service_graph(store.spans_between(end - int(window_s * 1e9), end))
    summaries = recent_traces(store, limit)
    services = sorted(
        {e.caller for e in edges} | {e.callee for e in edges} | {s.root_service for s in summaries}
    )
    spans = store.trace(trace_id) if trace_id else []
    if trace_id and not spans and jaeger_url:
        spans = jaeger.JaegerClient(jaeger_url).trace(trace_id)
    return {
        "services": services,
        "edges": [dataclasses.asdict(e) for e in edges],
        "traces": [_summary_json(s) for s in summaries],
        "trace": (
            {"trace_id": trace_id, "spans": [otlp_json_span(s) for s in spans]} if spans else None
        ),
        "jaeger_url": jaeger.validate_base_url(jaeger_url) if jaeger_url else None,
    }
