"""memlens traces / topology / collector on a real trace store: JSON, tables, bad input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from memlens.cli.main import main
from memlens.tracing.records import SpanRecord
from memlens.tracing.store import TraceStore
from tests.support.fake_jaeger import TRACE_ID as JAEGER_TRACE
from tests.support.fake_jaeger import TRACE_ID_64 as JAEGER_TRACE_64
from tests.support.fake_jaeger import serving

T = "ab" * 16


@pytest.fixture
def db(tmp_path: Path) -> Path:
    now = time.time_ns()
    spans = [
        SpanRecord(
            T,
            f"{1:016x}",
            None,
            "GET /ask",
            2,
            "gateway",
            now,
            now + 40_000_000,
            attributes={"code.filepath": "/g.py", "code.lineno": 10, "code.function": "ask"},
        ),
        SpanRecord(T, f"{2:016x}", f"{1:016x}", "GET", 3, "gateway", now, now + 30_000_000),
        SpanRecord(
            T,
            f"{3:016x}",
            f"{2:016x}",
            "GET /search",
            2,
            "retriever",
            now + 2,
            now + 20_000_000,
            status_code=2,
        ),
    ]
    path = tmp_path / "traces.db"
    with TraceStore(path) as store:
        store.insert(spans)
    return path


def test_traces_json_lists_recent_traces_with_jaeger_links(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["traces", "--db", str(db), "--json", "--jaeger-url", "http://j:16686"]) == 0
    [summary] = json.loads(capsys.readouterr().out)
    assert summary["trace_id"] == T
    assert summary["services"] == ["gateway", "retriever"]
    assert summary["errors"] == 1
    assert summary["jaeger_url"] == f"http://j:16686/trace/{T}"


def test_traces_waterfall_and_code_index(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["traces", "--db", str(db), "--trace", T, "--json"]) == 0
    spans = json.loads(capsys.readouterr().out)["spans"]
    assert [(s["name"], s["depth"]) for s in spans] == [
        ("GET /ask", 0),
        ("GET", 1),
        ("GET /search", 2),
    ]
    assert spans[0]["code"] == {"path": "/g.py", "line": 10, "function": "ask"}
    assert main(["traces", "--db", str(db), "--code", "--json"]) == 0
    [location] = json.loads(capsys.readouterr().out)
    assert (location["count"], location["p50_ms"], location["latest_trace_id"]) == (1, 40.0, T)
    assert main(["traces", "--db", str(db), "--trace", T]) == 0
    assert "GET /search" in capsys.readouterr().out
    assert main(["traces", "--db", str(db)]) == 0
    assert T in capsys.readouterr().out


def test_topology_json_and_table(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topology", "--db", str(db), "--since", "10m", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {
            "caller": "gateway",
            "callee": "retriever",
            "calls": 1,
            "errors": 1,
            "p50_ms": 30.0,
            "p95_ms": 30.0,
        }
    ]
    assert main(["topology", "--db", str(db)]) == 0
    assert "retriever" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["traces", "--db", "{missing}"], "no trace database"),
        (["traces", "--trace", "0" * 32], "no trace"),
        (["traces", "--limit", "0"], "--limit"),
        (["traces", "--jaeger-url", "localhost"], "Jaeger URL"),
        (["topology", "--since", "5 parsecs"], "--since"),
    ],
)
def test_bad_input_is_a_clear_usage_error(
    db: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.format(missing=db.parent / "nope.db") for a in argv]
    if "--db" not in argv:
        argv += ["--db", str(db)]
    code = main(argv)
    assert code in (1, 2)
    assert message in capsys.readouterr().err


def test_traces_report_prints_the_trace_view_json(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["traces", "--db", str(db), "--report", T]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["edges"][0]["caller"] == "gateway" and report["edges"][0]["callee"] == "retriever"
    assert [t["trace_id"] for t in report["traces"]] == [T]
    assert report["trace"]["trace_id"] == T and len(report["trace"]["spans"]) == 3
    assert report["trace"]["spans"][0]["location"] == {
        "path": "/g.py",
        "line": 10,
        "function": "ask",
    }
    assert report["version"] == 1 and len(report["trace"]["rows"]) == 3
    assert report["trace"]["rows"][0]["location"] == report["trace"]["spans"][0]["location"]
    assert main(["traces", "--db", str(db), "--report"]) == 0
    assert json.loads(capsys.readouterr().out)["trace"] is None


def test_traces_trace_falls_back_to_jaeger(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with serving() as jaeger:
        base = ["traces", "--db", str(db), "--jaeger-url", jaeger + "/jaeger", "--json"]
        assert main([*base, "--trace", JAEGER_TRACE]) == 0
        names = [row["name"] for row in json.loads(capsys.readouterr().out)["spans"]]
        assert names == ["GET /search", "/demo.Generator/Generate"]
        assert main([*base, "--trace", "ef" * 16]) == 2
        assert "or the Jaeger at" in capsys.readouterr().err


def test_traces_trace_links_a_64_bit_jaeger_trace_id(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Jaeger's own clients make 16-hex-digit trace ids: the table and the JSON link them
    (the link was once built by a check that wanted 32 digits and failed after printing)."""
    with serving() as jaeger:
        base = ["traces", "--db", str(db), "--jaeger-url", jaeger + "/jaeger"]
        assert main([*base, "--trace", JAEGER_TRACE_64]) == 0
        out = capsys.readouterr().out
        assert f"trace {JAEGER_TRACE_64}" in out
        assert f"Jaeger: {jaeger}/jaeger/trace/{JAEGER_TRACE_64}" in out
        assert main([*base, "--trace", JAEGER_TRACE_64, "--json"]) == 0
        document = json.loads(capsys.readouterr().out)
        assert document["jaeger_url"] == f"{jaeger}/jaeger/trace/{JAEGER_TRACE_64}"
