"""The trace view's whole payload, ``memlens/traceReport`` (DESIGN §4), built from the
store: every row, position, link and text the webview draws is computed here; the webview
validates the payload and draws it. The language server sends it in answer to
``memlens.traces`` and when new spans arrive; ``memlens traces --report`` prints it.

The contract (``vscode-extension/src/webviews/model/trace.ts`` validates it)::

    {
      "version": 1,
      "services": [str],                  sorted: callers, callees and roots of recent traces
      "nodes": [{name, column, row}],     the topology's layout, one per service, in order
      "edges": [{caller, callee, calls, errors, p50_ms, p95_ms,
                 label, label_lines}],    label: "12 calls · 1 error · p50 34.0 ms · p95 …";
                                          label_lines: the same in two lines (counts, latency)
      "traces": [{trace_id, root_service, root_name, start_ms (Unix ms), duration_ms,
                  span_count, error_count, duration_text, span_count_text,
                  error_count_text, start_text (local HH:MM:SS), trace_id_text (its first
                  8 hex digits), jaeger_url}],   newest first
      "trace": null | {
        trace_id, jaeger_url, total_ms,   total_ms: earliest start to latest end
        rows: [{span_id, parent_span_id (null for a root), name, service, depth,
                offset_ms (from the trace's start), duration_ms, duration_text, error,
                status_message (null when empty), attributes: [[key, text]],
                location: null | {path, line, function}, location_text}],
        spans: [OTLP/JSON span]           the trace's data for other tools; not drawn
      },
      "jaeger_url": null | str            the Jaeger UI base the links point into
    }

Rows are in tree order (children by start time under their parent, a span whose parent
is absent at the top; see :func:`~memlens.tracing.topology.tree_order`). Every
``jaeger_url`` but the base is a trace's page there, null without a base. Durations are
milliseconds, their texts :func:`~memlens.units.format_ms`. A trace the local store does
not hold is read from a team's Jaeger when its URL is given.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from memlens.tracing import jaeger
from memlens.tracing.records import SpanRecord
from memlens.tracing.store import TraceStore
from memlens.tracing.topology import (
    ServiceEdge,
    TraceSummary,
    code_location,
    layout_topology,
    recent_traces,
    service_graph,
    tree_order,
)
from memlens.units import format_ms

__all__ = ["DEFAULT_WINDOW_S", "VERSION", "empty_trace_report", "otlp_json_span", "trace_report"]

VERSION = 1
"""The payload's version; the webview refuses any other."""

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
    """One stored span as OTLP/JSON, with its service and code location."""
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
        "location": _location(span),
    }


def _display(value: Any) -> str:
    """An attribute value as the view shows it: scalars as text (``true``, ``7``, ``0.5``),
    anything else as its OTLP/JSON ``AnyValue``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return json.dumps(_any_value(value), separators=(",", ":"), ensure_ascii=False)


def _location(span: SpanRecord) -> dict[str, Any] | None:
    """``{path, line, function}`` from the span's ``code.*`` attributes, or None."""
    location = code_location(span)
    return dataclasses.asdict(location) if location is not None else None


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _edge_json(edge: ServiceEdge) -> dict[str, Any]:
    errors = f" · {_counted(edge.errors, 'error')}" if edge.errors else ""
    lines = [
        f"{_counted(edge.calls, 'call')}{errors}",
        f"p50 {format_ms(edge.p50_ms)} · p95 {format_ms(edge.p95_ms)}",
    ]
    return {**dataclasses.asdict(edge), "label": " · ".join(lines), "label_lines": lines}


def _summary_json(summary: TraceSummary, base: str | None) -> dict[str, Any]:
    return {
        "trace_id": summary.trace_id,
        "root_service": summary.root_service,
        "root_name": summary.root_name,
        "start_ms": summary.start_ns // 1_000_000,
        "duration_ms": summary.duration_ms,
        "span_count": summary.spans,
        "error_count": summary.errors,
        "duration_text": format_ms(summary.duration_ms),
        "span_count_text": str(summary.spans),
        "error_count_text": str(summary.errors),
        "start_text": time.strftime("%H:%M:%S", time.localtime(summary.start_ns / 1e9)),
        "trace_id_text": summary.trace_id[:8],
        "jaeger_url": jaeger.trace_link(base, summary.trace_id),
    }


def _row_json(span: SpanRecord, depth: int, start_ns: int) -> dict[str, Any]:
    location = _location(span)
    return {
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "name": span.name,
        "service": span.service,
        "depth": depth,
        "offset_ms": (span.start_ns - start_ns) / 1e6,
        "duration_ms": span.duration_ms,
        "duration_text": format_ms(span.duration_ms),
        "error": span.is_error,
        "status_message": span.status_message or None,
        "attributes": [[key, _display(value)] for key, value in span.attributes.items()],
        "location": location,
        "location_text": (
            f"{location['path']}:{location['line']}" if location else "no code location"
        ),
    }


def _trace_json(trace_id: str, spans: list[SpanRecord], base: str | None) -> dict[str, Any]:
    start = min(s.start_ns for s in spans)
    return {
        "trace_id": trace_id,
        "jaeger_url": jaeger.trace_link(base, trace_id),
        "total_ms": (max(s.end_ns for s in spans) - start) / 1e6,
        "rows": [_row_json(span, depth, start) for span, depth in tree_order(spans)],
        "spans": [otlp_json_span(s) for s in spans],
    }


def empty_trace_report() -> dict[str, Any]:
    """The payload when there is no store to read: the view says how to get traces."""
    return {
        "version": VERSION,
        "services": [],
        "nodes": [],
        "edges": [],
        "traces": [],
        "trace": None,
        "jaeger_url": None,
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
    """The payload: the service graph over the last ``window_s`` seconds, the ``limit`` most
    recent traces, and ``trace_id``'s spans when given: from the store, else, with a
    ``jaeger_url``, from that Jaeger's query API (null when neither has it; JaegerError
    when Jaeger cannot be read, UsageError when the URL is not http(s))."""
    end = time.time_ns() if now_ns is None else now_ns
    edges = service_graph(store.spans_between(end - int(window_s * 1e9), end))
    summaries = recent_traces(store, limit)
    services = sorted(
        {e.caller for e in edges} | {e.callee for e in edges} | {s.root_service for s in summaries}
    )
    spans = store.trace(trace_id) if trace_id else []
    if trace_id and not spans and jaeger_url:
        spans = jaeger.JaegerClient(jaeger_url).trace(trace_id)
    base = jaeger.validate_base_url(jaeger_url) if jaeger_url else None
    return {
        "version": VERSION,
        "services": services,
        "nodes": [dataclasses.asdict(n) for n in layout_topology(services, edges)],
        "edges": [_edge_json(e) for e in edges],
        "traces": [_summary_json(s, base) for s in summaries],
        "trace": _trace_json(trace_id, spans, base) if trace_id and spans else None,
        "jaeger_url": base,
    }
