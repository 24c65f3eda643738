"""memlens.tracing.trace_view: the ``memlens/traceReport`` payload the trace view draws."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from memlens.errors import UsageError
from memlens.tracing.jaeger import JaegerError
from memlens.tracing.records import SpanRecord
from memlens.tracing.store import TraceStore
from memlens.tracing.trace_view import empty_trace_report, otlp_json_span, trace_report
from tests.support.fake_jaeger import TRACE_ID as JAEGER_TRACE
from tests.support.spans import MS, T, span
from tests.support.trace_fixture import (
    FIXTURE,
    SHOWN,
    fixture_report,
    fixture_store,
    shown_spans,
)

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
            # issue 17: it said "1 calls · 1 errors"
            "label": "1 call · 1 error · p50 40.0 ms · p95 40.0 ms",
            "label_lines": ["1 call · 1 error", "p50 40.0 ms · p95 40.0 ms"],
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
        "duration_text": "50.0 ms",
        "span_count_text": "3",
        "error_count_text": "1",
        "start_text": time.strftime("%H:%M:%S", time.localtime(1.0)),
        "trace_id_text": T[:8],
        "jaeger_url": f"http://jaeger:16686/trace/{T}",
    }
    assert newest["trace_id_text"] != older["trace_id_text"]  # rows tell apart
    assert report["jaeger_url"] == "http://jaeger:16686"
    spans = report["trace"]["spans"]
    assert [s["spanId"] for s in spans] == [f"{i:016x}" for i in (1, 2, 3)]
    assert spans[0]["parentSpanId"] == "" and spans[1]["parentSpanId"] == f"{1:016x}"
    assert spans[1]["location"] == {"path": "/srv/gw.py", "line": 12, "function": None}
    assert spans[0]["location"] is None
    assert spans[2]["status"] == {"code": 2, "message": ""}
    assert spans[2]["service"] == "retriever"
    assert spans[2]["startTimeUnixNano"] == str(1010 * MS)
    assert report["version"] == 1
    assert report["nodes"] == [
        {"name": "batch", "column": 0, "row": 0},
        {"name": "gateway", "column": 0, "row": 1},
        {"name": "retriever", "column": 1, "row": 0},
    ]
    trace = report["trace"]
    assert trace["jaeger_url"] == f"http://jaeger:16686/trace/{T}" and trace["total_ms"] == 50.0
    rows = trace["rows"]
    assert [(r["span_id"], r["depth"]) for r in rows] == [(f"{i:016x}", i - 1) for i in (1, 2, 3)]
    assert rows[0]["parent_span_id"] is None and rows[1]["parent_span_id"] == f"{1:016x}"
    assert rows[1]["location"] == {"path": "/srv/gw.py", "line": 12, "function": None}
    assert rows[1]["location_text"] == "/srv/gw.py:12"
    assert rows[0]["location"] is None and rows[0]["location_text"] == "no code location"
    assert rows[2]["error"] is True and rows[2]["status_message"] is None
    assert rows[2]["offset_ms"] == 10.0 and rows[2]["duration_ms"] == 30.0
    assert rows[2]["duration_text"] == "30.0 ms"
    assert rows[2]["attributes"] == [["http.status_code", "500"]]


def test_attribute_values_show_as_text(tmp_path: Path) -> None:
    """The text the webview made of each OTLP/JSON AnyValue, now made here."""
    attributes = {"s": "x", "n": 7, "ratio": 0.5, "whole": 14.0, "ok": True, "tags": ["a", 2]}
    record = span(9, None, "batch", 1, 0, 1, **attributes)
    record = dataclasses.replace(record, status_message="upstream")
    with TraceStore(tmp_path / "traces.db") as store:
        store.insert([record])
        (row,) = trace_report(store, T, now_ns=NOW_NS)["trace"]["rows"]
    assert row["attributes"] == [
        ["s", "x"],
        ["n", "7"],
        ["ratio", "0.5"],
        ["whole", "14"],
        ["ok", "true"],
        ["tags", '{"arrayValue":{"values":[{"stringValue":"a"},{"intValue":"2"}]}}'],
    ]
    assert row["status_message"] == "upstream"


@pytest.mark.parametrize(
    ("attributes", "location"),
    [
        ({"code.filepath": "/a.py", "code.lineno": 14.0}, {"path": "/a.py", "line": 14}),
        ({"code.file.path": "/a.py", "code.line.number": " 3 "}, {"path": "/a.py", "line": 3}),
        ({"code.file.path": "/a.py", "code.line.number": 0.5}, None),
        ({"code.file.path": "/a.py", "code.line.number": "-2"}, None),
        ({"code.file.path": "/a.py", "code.line.number": True}, None),
        ({"code.line.number": 3}, None),
    ],
)
def test_code_locations_as_the_view_read_them(
    tmp_path: Path, attributes: dict[str, object], location: dict[str, object] | None
) -> None:
    """One rule for every code location (records.code_location_of), the one the webview's
    locationOf had: a whole line number from 1, however sent."""
    with TraceStore(tmp_path / "traces.db") as store:
        store.insert([span(9, None, "batch", 1, 0, 1, **attributes)])
        (row,) = trace_report(store, T, now_ns=NOW_NS)["trace"]["rows"]
    assert row["location"] == (location and {**location, "function": None})


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


def test_the_fixture_store_gives_services_edges_traces_and_code_locations(
    tmp_path: Path,
) -> None:
    report = fixture_report(tmp_path)
    assert report["services"] == ["gateway", "generator", "retriever"]
    assert len(report["edges"]) == 2
    assert len(report["traces"]) == 2
    assert report["jaeger_url"] == "http://localhost:16686"
    rows = report["trace"]["rows"]
    assert rows[0]["location"] == {"path": "services/gateway.py", "line": 21, "function": "chat"}
    # the older code.* attribute names work too
    assert rows[1]["location"] == {
        "path": "services/retriever.py",
        "line": 14,
        "function": "search",
    }
    assert rows[2]["location"] is None
    assert rows[0]["parent_span_id"] is None


def test_waterfall_rows_tree_order_offsets_and_durations_in_ms(tmp_path: Path) -> None:
    trace = fixture_report(tmp_path)["trace"]
    rows = trace["rows"]
    assert [(r["name"], r["depth"]) for r in rows] == [
        ("POST /chat", 0),
        ("GET /search", 1),
        ("sqlite query", 2),
        ("POST /generate", 1),
        ("decode", 2),
    ]
    assert abs(trace["total_ms"] - 48.2) < 1e-6
    assert abs(rows[3]["offset_ms"] - 14) < 1e-6
    assert abs(rows[3]["duration_ms"] - 33.5) < 1e-6


def test_orphans_and_cycles_still_give_every_span_at_most_one_row(tmp_path: Path) -> None:
    spans = shown_spans()
    spans[0] = dataclasses.replace(spans[0], parent_span_id="1c2d3e4f5a6b7c8d")  # a cycle
    with TraceStore(tmp_path / "cycle.db") as store:
        store.insert(spans)
        rows = trace_report(store, SHOWN)["trace"]["rows"]
    assert len(rows) <= len(spans)
    assert len({r["span_id"] for r in rows}) == len(rows)


def test_the_jaeger_url_setting_gives_every_trace_its_link(tmp_path: Path) -> None:
    with fixture_store(tmp_path / "traces.db") as store:
        linked = trace_report(store, SHOWN, jaeger_url="https://j.example/")
        unlinked = trace_report(store, SHOWN)
    assert linked["jaeger_url"] == "https://j.example"
    assert linked["trace"]["jaeger_url"] == f"https://j.example/trace/{SHOWN}"
    assert [t["jaeger_url"] for t in linked["traces"]] == [
        f"https://j.example/trace/{t['trace_id']}" for t in linked["traces"]
    ]
    assert unlinked["jaeger_url"] is None and unlinked["trace"]["jaeger_url"] is None
    assert all(t["jaeger_url"] is None for t in unlinked["traces"])


def test_the_empty_report_is_a_whole_payload() -> None:
    assert empty_trace_report() == {
        "version": 1,
        "services": [],
        "nodes": [],
        "edges": [],
        "traces": [],
        "trace": None,
        "jaeger_url": None,
    }


def test_the_extensions_fixture_is_what_trace_view_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The webview tests draw this file: after a payload change, rewrite it with
    ``TZ=UTC python -m tests.support.trace_fixture`` (start times are local times)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert json.loads(FIXTURE.read_text()) == fixture_report(tmp_path)
    finally:
        monkeypatch.undo()
        time.tzset()
