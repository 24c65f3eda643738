"""memlens.tracing.topology and jaeger: pairing, peer.service, orphans, percentiles, the
code-location index, deep links."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from memlens.errors import UsageError
from memlens.tracing import jaeger
from memlens.tracing.store import TraceStore
from memlens.tracing.topology import (
    CodeLocation,
    ServiceEdge,
    code_index,
    layout_topology,
    percentile,
    recent_traces,
    service_graph,
    tree_order,
    waterfall,
)
from tests.support.spans import T, span

SPANS = [
    span(1, None, "gateway", 2, 0, 100, attributes={"code.filepath": "/g.py", "code.lineno": 10}),
    span(2, 1, "gateway", 3, 5, 30),  # HTTP client → retriever
    span(
        3, 2, "retriever", 2, 7, 25, attributes={"code.file.path": "/r.py", "code.line.number": 4}
    ),
    span(4, 1, "gateway", 3, 40, 50, error=True),  # gRPC client → generator
    span(5, 4, "generator", 2, 42, 45, error=True),
    span(6, 1, "gateway", 3, 92, 3, attributes={"peer.service": "redis"}),  # uninstrumented target
    span(7, 99, "retriever", 1, 8, 2),  # its parent was never stored
]


def test_service_graph_pairs_client_and_server_and_uses_peer_service() -> None:
    assert service_graph(SPANS) == [
        ServiceEdge("gateway", "generator", 1, 1, 50.0, 50.0),
        ServiceEdge("gateway", "redis", 1, 0, 3.0, 3.0),
        ServiceEdge("gateway", "retriever", 1, 0, 30.0, 30.0),
    ]


def test_service_graph_counts_calls_and_percentiles_over_traces() -> None:
    spans = []
    for i in range(20):
        tid = f"{i + 1:032x}"
        spans += [
            span(1, None, "a", 3, 0, i + 1, trace_id=tid, error=i == 0),
            span(2, 1, "b", 2, 0, 1, trace_id=tid),
        ]
    assert service_graph(spans) == [ServiceEdge("a", "b", 20, 1, 10.0, 19.0)]


def test_waterfall_is_depth_first_and_keeps_orphans_as_roots() -> None:
    rows = waterfall(list(reversed(SPANS)))
    assert [(r.name, r.depth, r.orphan) for r in rows] == [
        ("gateway-1", 0, False),
        ("gateway-2", 1, False),
        ("retriever-3", 2, False),
        ("gateway-4", 1, False),
        ("generator-5", 2, False),
        ("gateway-6", 1, False),
        ("retriever-7", 0, True),
    ]
    assert rows[0].code == CodeLocation("/g.py", 10, None)
    assert rows[2].offset_ms == 7.0 and rows[2].duration_ms == 25.0
    assert rows[4].error


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([5.0], 95) == 5.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


def test_recent_traces_and_code_index(tmp_path: Path) -> None:
    later = [
        span(
            1,
            None,
            "gateway",
            2,
            1000,
            20,
            trace_id="cd" * 16,
            attributes={"code.filepath": "/g.py", "code.lineno": 10},
        )
    ]
    with TraceStore(tmp_path / "t.db") as store:
        store.insert(SPANS + later)
        summaries = recent_traces(store, 10)
        assert [s.trace_id for s in summaries] == ["cd" * 16, T]
        first = summaries[1]
        assert (first.root_service, first.spans, first.errors) == ("gateway", 7, 2)
        assert first.services == ["gateway", "generator", "retriever"]
        assert first.duration_ms == 100.0
        index = code_index(store)
        assert [(s.location.path, s.location.line, s.count) for s in index] == [
            ("/g.py", 10, 2),
            ("/r.py", 4, 1),
        ]
        assert index[0].latest_trace_id == "cd" * 16
        assert index[0].p50_ms == 20.0
        assert [s.location.path for s in code_index(store, "/r.py")] == ["/r.py"]


def test_jaeger_links() -> None:
    base = "http://localhost:16686/"
    assert jaeger.trace_url(base, T.upper()) == f"http://localhost:16686/trace/{T}"
    assert jaeger.trace_url(base, T, "00f067aa0ba902b7").endswith("?uiFind=00f067aa0ba902b7")
    assert jaeger.search_url(base, "gateway", 5_000_000, 9_000_000) == (
        "http://localhost:16686/search?service=gateway&start=5000&end=9000"
    )
    bad_calls: list[Callable[[], str]] = [
        lambda: jaeger.trace_url("ftp://x", T),
        lambda: jaeger.trace_url(base, "xyz"),
    ]
    for bad in bad_calls:
        with pytest.raises(UsageError):
            bad()


def test_topology_columns_follow_the_call_depth_and_cycles_terminate() -> None:
    edges = [
        ServiceEdge("gateway", "retriever", 1, 0, 1, 2),
        ServiceEdge("retriever", "db", 1, 0, 1, 2),
        ServiceEdge("gateway", "generator", 1, 0, 1, 2),
        ServiceEdge("db", "gateway", 1, 0, 1, 2),
    ]
    nodes = layout_topology(["gateway", "retriever", "generator", "db"], edges)
    column = {n.name: n.column for n in nodes}
    assert column["retriever"] > 0 and column["db"] > column["retriever"]
    assert all(n.column < 4 for n in nodes)


def test_topology_rows_count_within_a_column_in_service_order() -> None:
    edges = [ServiceEdge("a", "c", 1, 0, 1, 1), ServiceEdge("a", "b", 1, 0, 1, 1)]
    nodes = layout_topology(["a", "b", "c"], edges)
    assert [(n.name, n.column, n.row) for n in nodes] == [("a", 0, 0), ("b", 1, 0), ("c", 1, 1)]


def test_tree_order_visits_a_repeated_span_id_once() -> None:
    """A span id twice, once under the other's child (as Jaeger can send it): this looped."""
    spans = [span(1, None, "a", 2, 0, 10), span(2, 1, "a", 1, 1, 5), span(3, 2, "a", 1, 2, 1)]
    spans.append(span(2, 3, "a", 1, 3, 1))
    assert [(s.span_id[-1], depth) for s, depth in tree_order(spans)] == [
        ("1", 0),
        ("2", 1),
        ("3", 2),
    ]


def test_tree_order_keeps_the_given_order_of_spans_that_start_together() -> None:
    spans = [span(1, None, "a", 2, 0, 10), span(3, 1, "a", 1, 1, 5), span(2, 1, "a", 1, 1, 5)]
    assert [s.span_id[-1] for s, _ in tree_order(spans)] == ["1", "3", "2"]
