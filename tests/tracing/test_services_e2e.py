"""End to end: the three example services, each its own process under ``memlens run``,
send their spans to a real collector; one trace per request across HTTP and gRPC hops,
correct parent/child links, topology edges, and code locations on the real lines."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from memlens.tracing.records import SpanRecord
from memlens.tracing.store import TraceStore
from memlens.tracing.topology import ServiceEdge, service_graph
from tests.support.collector_process import RunningCollector

SERVICES = Path(__file__).resolve().parents[2] / "examples" / "services"
SERVER, CLIENT = 2, 3


def _start(name: str, collector: RunningCollector, *args: str) -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint}
    env.pop("OTEL_SERVICE_NAME", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "memlens",
            "run",
            "--",
            sys.executable,
            str(SERVICES / f"{name}.py"),
            "--port",
            "0",
            *args,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("ready "), f"{name} did not start: {line!r}"
    return process, int(line.split()[1])


@pytest.fixture
def services(collector: RunningCollector) -> Iterator[dict[str, tuple[subprocess.Popen[str], int]]]:
    started: dict[str, tuple[subprocess.Popen[str], int]] = {}
    try:
        started["retriever"] = _start("retriever", collector)
        started["generator"] = _start("generator", collector)
        started["gateway"] = _start(
            "gateway",
            collector,
            "--retriever",
            f"http://127.0.0.1:{started['retriever'][1]}",
            "--generator",
            f"127.0.0.1:{started['generator'][1]}",
        )
        yield started
    finally:
        for process, _ in started.values():
            if process.poll() is None:
                process.kill()
            process.wait()


def _line(path: str, line: int) -> str:
    return Path(path).read_text().splitlines()[line - 1]


def test_one_trace_across_http_and_grpc_with_code_locations(
    collector: RunningCollector, services: dict[str, tuple[subprocess.Popen[str], int]]
) -> None:
    gateway_url = f"http://127.0.0.1:{services['gateway'][1]}/ask"
    with httpx.Client(timeout=30) as client:
        for _ in range(3):
            response = client.get(gateway_url, params={"q": "KV cache"})
            assert response.status_code == 200, response.text
            assert response.json()["answer"].startswith("KV cache:")
        failed = client.get(gateway_url, params={"q": "nothing matches"})
        assert failed.status_code == 502
    # SIGTERM: each service flushes its spans, then dies by the signal, as it would untraced
    for process, _ in services.values():
        process.send_signal(signal.SIGTERM)
    for name, (process, _) in services.items():
        assert process.wait(timeout=60) == -signal.SIGTERM, name

    with TraceStore(collector.db, readonly=True) as store:
        trace_ids = store.recent_trace_ids(100)
        traces = {t: store.trace(t) for t in trace_ids}
    assert len(traces) == 4  # one per request, every hop inside it
    for spans in traces.values():
        by_id = {s.span_id: s for s in spans}
        [root] = [s for s in spans if s.parent_span_id is None]
        assert (root.service, root.kind) == ("gateway", SERVER)
        assert all(s.parent_span_id is None or s.parent_span_id in by_id for s in spans)
        for span in spans:
            if span.service != "gateway":
                parent = by_id[span.parent_span_id or ""]
                assert (parent.service, parent.kind, span.kind) == ("gateway", CLIENT, SERVER)
                assert parent.parent_span_id == root.span_id
        memory = [e for e in root.events if e["name"] == "memlens.memory"]
        assert memory and memory[0]["attributes"]["process.memory.rss"] > 10 * 2**20

    ok = [spans for spans in traces.values() if not any(s.is_error for s in spans)]
    assert len(ok) == 3
    spans = ok[0]
    assert {s.service for s in spans} == {"gateway", "retriever", "generator"}

    def located(service: str, kind: int) -> list[tuple[str, int, str]]:
        return [
            (
                _line(s.attributes["code.file.path"], s.attributes["code.line.number"]),
                s.attributes["code.line.number"],
                s.attributes["code.function.name"],
            )
            for s in spans
            if s.service == service and s.kind == kind
        ]

    [(gateway_line, _, gateway_fn)] = located("gateway", SERVER)
    assert "def __call__" in gateway_line and gateway_fn == "Gateway.__call__"
    calls = sorted(located("gateway", CLIENT), key=lambda c: c[1])
    assert ["# call: retriever" in calls[0][0], "# call: generator" in calls[1][0]] == [True, True]
    assert {c[2] for c in calls} == {"Gateway.ask"}
    [(retriever_line, _, _)] = located("retriever", SERVER)
    assert retriever_line.startswith("def search(")
    [(generator_line, _, _)] = located("generator", SERVER)
    assert generator_line.startswith("def generate(")

    all_spans: list[SpanRecord] = [s for t in traces.values() for s in t]
    edges = {(e.caller, e.callee): e for e in service_graph(all_spans)}
    assert set(edges) == {("gateway", "retriever"), ("gateway", "generator")}
    assert (edges["gateway", "retriever"].calls, edges["gateway", "retriever"].errors) == (4, 0)
    generator_edge: ServiceEdge = edges["gateway", "generator"]
    assert (generator_edge.calls, generator_edge.errors) == (4, 1)
    assert 0 < generator_edge.p50_ms <= generator_edge.p95_ms


def test_run_passes_the_exit_code_through_and_rejects_an_empty_command(tmp_path: Path) -> None:
    script = tmp_path / "exits.py"
    script.write_text("import sys\nsys.exit(7)\n")
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    result = subprocess.run(
        [sys.executable, "-m", "memlens", "run", "--", sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 7
    assert "nothing listens on 127.0.0.1:9" in result.stderr
    empty = subprocess.run(
        [sys.executable, "-m", "memlens", "run"], capture_output=True, text=True, timeout=60
    )
    assert empty.returncode == 2 and "nothing to run" in empty.stderr
