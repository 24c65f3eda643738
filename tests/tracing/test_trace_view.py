"""memlens.tracing.report: the ``memlens/traceReport`` payload the trace view draws."""

from __future__ import annotations

from pathlib import Path

import pytest

from memlens.errors import UsageError
from memlens.tracing.jaeger import JaegerError
from memlens.tracing.report import otlp_json_span, trace_report
from memlens.tracing.store import SpanRecord, TraceStore
from tests.tracing.fake_jaeger import TRACE_ID as JAEGER_TRACE
from tests.tracing.test_topology import MS, T, span

OTHER = "cd" * 16
NOW_NS = 10_000 * MS


def _stored(tmp_path: Path) -> TraceStore:
    store = TraceStore(tmp_path / "traces.db")
    store.insert(
        [
            span(1, None, "gateway", 2, 1000, 50),
            span(
                2, 1, "gateway", 3, 1005, 40, **{"code.filepath": "/srv/gw.py", "code.lineno": 12}
            ),
            span(3, 2, "retriever", 2, 1010, 30, error=True, **{"http.status_code": 500}),
            span(9, None, "batch", 1, 2000, 5, trace_id=OTHER, ratio=0.5, ok=True, tags=["a"]),
        ]
    )
    return store


def test_report_has_edges_recent_traces_and_the_asked_trace(tmp_path: Path) -> None:
    with _stored(tmp_path) as store:
        report = trace_report(store, T, now_ns=NOW_NS, jaeger_url="http://jaeger:16686/")
    assert report["services"] == ["batch", "gateway", "retriever"]
    assert report["edges"] == [
        {
            "caller": "gateway",
            "callee": "retriever",
            "calls": 1,
            "errors": 1,
            "p50_ms": 40.0,
            "p95_ms": 40.0,
        }
    ]
    newest, older = report["traces"]
    assert newest["trace_id"] == OTHER and newest["start_ms"] == 2000
    assert older == {
        "trace_id": T,
        "root_service": "gateway",
        "root_name": "gateway-1",
        "start_ms": 1000,
        "duration_ms": 50.0,
        "span_count": 3,
        "error_count": 1,
    }
    assert report["jaeger_url"] == "http://jaeger:16686"
    spans = report["trace"]["spans"]
    assert [s["spanId"] for s in spans] == [f"{i:016x}" for i in (1, 2, 3)]
    assert spans[0]["parentSpanId"] == "" and spans[1]["parentSpanId"] == f"{1:016x}"
    assert spans[1]["location"] == {"path": "/srv/gw.py", "line": 12, "function": None}
    assert spans[0]["location"] is None
    assert spans[2]["status"] == {"code": 2, "message": ""}
    assert spans[2]["service"] == "retriever"
    assert spans[2]["startTimeUnixNano"] == str(1010 * MS)


def test_the_graph_covers_only_the_window(tmp_path: Path) -> None:
    with _stored(tmp_path) as store:
        report = trace_report(store, None, now_ns=NOW_NS, window_s=5.0)
    assert report["edges"] == [] and report["trace"] is None
    assert len(report["traces"]) == 2


def test_an_unknown_trace_is_null_and_a_bad_jaeger_url_is_an_error(tmp_path: Path) -> None:
    with _stored(tmp_path) as store:
        assert trace_report(store, "ef" * 16, now_ns=NOW_NS)["trace"] is None
        with pytest.raises(UsageError, match="Jaeger URL"):
            trace_report(store, None, jaeger_url="ftp://jaeger")


def test_attribute_values_follow_the_otlp_json_mapping() -> None:
    """kvlists and empty values too (they used to be a Python repr string: "{'k': 1}")."""
    attributes = {"n": 7, "ratio": 0.5, "ok": True, "tags": ["a", 2], "kv": {"k": 1}, "no": None}
    record: SpanRecord = span(9, None, "batch", 1, 0, 1, **attributes)
    values = {a["key"]: a["value"] for a in otlp_json_span(record)["attributes"]}
    assert values == {
        "n": {"intValue": "7"},
        "ratio": {"doubleValue": 0.5},
        "ok": {"boolValue": True},
        "tags": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "2"}]}},
        "kv": {"kvlistValue": {"values": [{"key": "k", "value": {"intValue": "1"}}]}},
        "no": {},
    }


def test_a_trace_the_store_lacks_comes_from_jaeger(tmp_path: Path, jaeger: str) -> None:
    with TraceStore(tmp_path / "empty.db") as store:
        report = trace_report(store, JAEGER_TRACE, jaeger_url=jaeger + "/jaeger")
        assert [s["name"] for s in report["trace"]["spans"]] == [
            "GET /search",
            "/demo.Generator/Generate",
        ]
        assert report["traces"] == []  # the list stays the local store's
        assert trace_report(store, "ef" * 16, jaeger_url=jaeger + "/jaeger")["trace"] is None
        with pytest.raises(JaegerError, match="did not answer JSON"):
            trace_report(store, JAEGER_TRACE, jaeger_url=jaeger + "/html")
