"""What the stored spans say: recent traces, one trace as a waterfall, the service graph
and its layout, and the index from code location to its spans.

All shapes are plain dataclasses (DESIGN §4) that ``dataclasses.asdict`` turns into the
JSON the CLI and the editor use. Durations are milliseconds; times Unix nanoseconds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from memlens.tracing.records import SpanRecord, code_location_of
from memlens.tracing.store import TraceStore

__all__ = [
    "CLIENT_KINDS",
    "SERVER_KINDS",
    "CodeLocation",
    "CodeLocationStats",
    "NodePosition",
    "ServiceEdge",
    "TraceSummary",
    "WaterfallRow",
    "code_index",
    "code_location",
    "layout_topology",
    "percentile",
    "recent_traces",
    "service_graph",
    "summarize",
    "tree_order",
    "waterfall",
]

CLIENT_KINDS = frozenset({3, 4})
"""OTLP span kinds that call out: CLIENT, PRODUCER."""
SERVER_KINDS = frozenset({2, 5})
"""OTLP span kinds that are called: SERVER, CONSUMER."""


@dataclass(frozen=True)
class CodeLocation:
    """A line of source code that produced spans."""

    path: str
    line: int
    """1-based line number."""
    function: str | None = None


@dataclass(frozen=True)
class TraceSummary:
    """One trace in a list of recent traces."""

    trace_id: str
    root_service: str
    root_name: str
    services: list[str]
    spans: int
    errors: int
    start_ns: int
    duration_ms: float
    """From the earliest start to the latest end of its spans."""


@dataclass(frozen=True)
class WaterfallRow:
    """One span of a trace, in depth-first order with its depth and offset."""

    span_id: str
    parent_span_id: str | None
    depth: int
    service: str
    name: str
    kind: int
    offset_ms: float
    """Start relative to the trace's earliest span."""
    duration_ms: float
    error: bool
    orphan: bool
    """The span names a parent that is not in the store: shown as a root, not dropped."""
    code: CodeLocation | None


@dataclass(frozen=True)
class ServiceEdge:
    """Calls from one service to another over a window."""

    caller: str
    callee: str
    calls: int
    errors: int
    p50_ms: float
    p95_ms: float


@dataclass(frozen=True)
class NodePosition:
    """Where the topology draws one service."""

    name: str
    column: int
    """The longest call path from a root to this service (0 for roots)."""
    row: int
    """The service's place in its column, in the order services were given."""


@dataclass(frozen=True)
class CodeLocationStats:
    """The spans one code location produced: what a code lens shows."""

    location: CodeLocation
    count: int
    p50_ms: float
    p95_ms: float
    latest_trace_id: str
    latest_start_ns: int


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of values; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(spans: Sequence[SpanRecord]) -> TraceSummary:
    """A summary of one trace's spans (roots: no parent, or a parent not stored)."""
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if s.parent_span_id is None or s.parent_span_id not in ids]
    root = min(roots or spans, key=lambda s: (s.parent_span_id is not None, s.start_ns))
    start = min(s.start_ns for s in spans)
    return TraceSummary(
        trace_id=root.trace_id,
        root_service=root.service,
        root_name=root.name,
        services=sorted({s.service for s in spans}),
        spans=len(spans),
        errors=sum(s.is_error for s in spans),
        start_ns=start,
        duration_ms=(max(s.end_ns for s in spans) - start) / 1e6,
    )


def recent_traces(store: TraceStore, limit: int = 20) -> list[TraceSummary]:
    """The ``limit`` most recent traces, newest first."""
    return [summarize(store.trace(trace_id)) for trace_id in store.recent_trace_ids(limit)]


def code_location(span: SpanRecord) -> CodeLocation | None:
    """Where the span's code is, when its attributes name both file and line."""
    path, line, function = code_location_of(span.attributes)
    return CodeLocation(path, line, function) if path is not None and line is not None else None


def tree_order(spans: Sequence[SpanRecord]) -> list[tuple[SpanRecord, int]]:
    """Spans of one trace depth first with their depth, children by start time under their
    parent; a span whose parent is absent is a root. A span id is visited once, so neither
    a repeated id nor a parent cycle can loop (a cycle no root reaches is left out)."""
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[SpanRecord]] = defaultdict(list)
    for s in spans:
        children[s.parent_span_id if s.parent_span_id in ids else None].append(s)

    def later_first(kids: list[SpanRecord]) -> list[SpanRecord]:
        # the stack pops the earliest first; ties keep the order the spans came in
        return sorted(kids, key=lambda s: s.start_ns)[::-1]

    ordered: list[tuple[SpanRecord, int]] = []
    seen: set[str] = set()
    stack = [(s, 0) for s in later_first(children[None])]
    while stack:
        span, depth = stack.pop()
        if span.span_id in seen:
            continue
        seen.add(span.span_id)
        ordered.append((span, depth))
        stack.extend((kid, depth + 1) for kid in later_first(children.get(span.span_id, [])))
    return ordered


def waterfall(spans: Sequence[SpanRecord]) -> list[WaterfallRow]:
    """Spans of one trace in :func:`tree_order`; orphans become roots."""
    if not spans:
        return []
    ids = {s.span_id for s in spans}
    start = min(s.start_ns for s in spans)
    return [
        WaterfallRow(
            span_id=span.span_id,
            parent_span_id=span.parent_span_id,
            depth=depth,
            service=span.service,
            name=span.name,
            kind=span.kind,
            offset_ms=(span.start_ns - start) / 1e6,
            duration_ms=span.duration_ms,
            error=span.is_error,
            orphan=span.parent_span_id is not None and span.parent_span_id not in ids,
            code=code_location(span),
        )
        for span, depth in tree_order(spans)
    ]


def _peer(span: SpanRecord) -> str | None:
    for key in ("peer.service", "rpc.service", "server.address", "net.peer.name"):
        value = span.attributes.get(key)
        if value:
            return str(value)
    return None


def service_graph(spans: Iterable[SpanRecord]) -> list[ServiceEdge]:
    """Caller → callee edges over the given spans.

    A client span is paired with the server spans that are its children, whose service is
    the callee; a client span with no instrumented server behind it names its callee by
    ``peer.service`` (then ``rpc.service``, ``server.address``). A server span whose parent
    is another service's non-client span is an edge too. Latency is the caller's view.
    """
    spans = list(spans)
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    servers_of: dict[tuple[str, str], list[SpanRecord]] = defaultdict(list)
    for s in spans:
        if s.kind in SERVER_KINDS and s.parent_span_id is not None:
            servers_of[(s.trace_id, s.parent_span_id)].append(s)
    calls: dict[tuple[str, str], list[tuple[float, bool]]] = defaultdict(list)
    for s in spans:
        if s.kind in CLIENT_KINDS:
            servers = servers_of.get((s.trace_id, s.span_id), [])
            if servers:
                for server in servers:
                    failed = s.is_error or server.is_error
                    calls[(s.service, server.service)].append((s.duration_ms, failed))
            elif (peer := _peer(s)) is not None:
                calls[(s.service, peer)].append((s.duration_ms, s.is_error))
        elif s.kind in SERVER_KINDS and s.parent_span_id is not None:
            parent = by_id.get((s.trace_id, s.parent_span_id))
            if parent and parent.kind not in CLIENT_KINDS and parent.service != s.service:
                calls[(parent.service, s.service)].append((s.duration_ms, s.is_error))
    edges = []
    for (caller, callee), samples in sorted(calls.items()):
        durations = [d for d, _ in samples]
        edges.append(
            ServiceEdge(
                caller=caller,
                callee=callee,
                calls=len(samples),
                errors=sum(failed for _, failed in samples),
                p50_ms=percentile(durations, 50),
                p95_ms=percentile(durations, 95),
            )
        )
    return edges


def layout_topology(services: Sequence[str], edges: Sequence[ServiceEdge]) -> list[NodePosition]:
    """Services in columns by their longest call path from a root, rows in the given order.
    Relaxation runs at most once per service and no column reaches the service count, so a
    call cycle is cut rather than looped."""
    depth = dict.fromkeys(services, 0)
    for _ in services:
        changed = False
        for e in edges:
            column = depth.get(e.caller, 0) + 1
            if e.caller != e.callee and depth.get(e.callee, 0) < column < len(services):
                depth[e.callee] = column
                changed = True
        if not changed:
            break
    rows: dict[int, int] = defaultdict(int)
    nodes = []
    for name in services:
        column = depth.get(name, 0)
        nodes.append(NodePosition(name, column, rows[column]))
        rows[column] += 1
    return nodes


def code_index(store: TraceStore, path: str | None = None) -> list[CodeLocationStats]:
    """Per code location (optionally of one file): span count, p50/p95 and latest trace."""
    stats: list[CodeLocationStats] = []
    current: tuple[str, int] | None = None
    function: str | None = None
    durations: list[float] = []
    latest = ("", -1)

    def flush() -> None:
        if current is not None:
            stats.append(
                CodeLocationStats(
                    location=CodeLocation(current[0], current[1], function),
                    count=len(durations),
                    p50_ms=percentile(durations, 50),
                    p95_ms=percentile(durations, 95),
                    latest_trace_id=latest[0],
                    latest_start_ns=latest[1],
                )
            )

    for p, line, fn, trace_id, start, duration, _error in store.code_durations(path):
        if (p, line) != current:
            flush()
            current, function, durations, latest = (p, line), fn, [], ("", -1)
        durations.append(duration / 1e6)
        function = fn or function
        if start >= latest[1]:
            latest = (trace_id, start)
    flush()
    return stats
