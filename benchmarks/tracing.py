"""Local tracing figures, one run: collector ingest, instrumentation overhead, code-lens query.

1. Collector ingest: a real ``memlens collector`` process on a free loopback port; sender
   processes post pre-encoded OTLP protobuf requests (500 spans each) on keep-alive
   connections; spans/s from the first send to the last acknowledgement (every span is
   committed to SQLite before its 200). Goal ≥ 20,000 spans/s on 2 cores.
2. Per-call overhead: an httpx client calling a wsgiref server in the same process, in
   fresh processes (ROUNDS each, taking turns): no tracing; plain OpenTelemetry (SDK, batch
   OTLP/HTTP export, httpx + WSGI instrumentation); and ``memlens run`` (the same plus code
   locations, memory events on server spans and memory metrics every second). Goal: memlens
   ≤ 1.2× plain OpenTelemetry (mean per call).
3. Code-lens query: 100,000 spans over 50 files × 20 lines in a trace store; p95 of
   ``code_index(store, path)`` (what the editor asks for one open file). Goal < 20 ms.

Run: .venv/bin/python benchmarks/tracing.py   (writes benchmarks/results/tracing.json)
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "tracing.json"
ROOT = Path(__file__).resolve().parents[1]
INGEST_SPANS = 100_000
SPANS_PER_REQUEST = 500
SENDERS = 4
CALLS = 500
ROUNDS = 3
"""Each configuration runs ROUNDS fresh processes of CALLS calls, the configurations taking
turns, so that load from elsewhere on a shared machine falls on all of them alike."""
QUERY_SPANS = 100_000
QUERIES = 200


def _request(seed: int) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    def kv(key: str, value: str | int) -> KeyValue:
        v = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
        return KeyValue(key=key, value=v)

    spans = []
    for i in range(SPANS_PER_REQUEST):
        n = seed * SPANS_PER_REQUEST + i + 1
        spans.append(
            Span(
                trace_id=(n // 4 + 1).to_bytes(16, "big"),
                span_id=n.to_bytes(8, "big"),
                parent_span_id=(n - 1).to_bytes(8, "big") if n % 4 else b"",
                name="GET /search",
                kind=Span.SPAN_KIND_CLIENT if n % 2 else Span.SPAN_KIND_SERVER,
                start_time_unix_nano=time.time_ns(),
                end_time_unix_nano=time.time_ns() + 1_000_000,
                attributes=[
                    kv("http.request.method", "GET"),
                    kv("url.full", "http://127.0.0.1:8001/search?q=kv"),
                    kv("code.file.path", f"/src/svc/file{n % 50}.py"),
                    kv("code.line.number", (n // 50) % 20 + 1),
                    kv("code.function.name", "handler"),
                ],
            )
        )
    resource = ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])
    resource.resource.attributes.append(kv("service.name", f"svc{seed % 8}"))
    body: bytes = ExportTraceServiceRequest(resource_spans=[resource]).SerializeToString()
    return body


def _sender(port: int, bodies: list[bytes], errors: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for body in bodies:
        conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            errors.value += 1
    conn.close()


def bench_ingest() -> dict[str, Any]:
    requests = INGEST_SPANS // SPANS_PER_REQUEST
    bodies = [_request(seed) for seed in range(requests)]
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "traces.db"
        collector = subprocess.Popen(
            [sys.executable, "-m", "memlens", "collector", "--port", "0", "--db", str(db)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert collector.stdout is not None
            port = int(collector.stdout.readline().rsplit(":", 1)[1].split("/")[0])
            errors = multiprocessing.Value("i", 0)
            senders = [
                multiprocessing.Process(target=_sender, args=(port, bodies[i::SENDERS], errors))
                for i in range(SENDERS)
            ]
            start = time.perf_counter()
            for p in senders:
                p.start()
            for p in senders:
                p.join()
            elapsed = time.perf_counter() - start
        finally:
            collector.terminate()
            collector.wait()
        from memlens.tracing.store import TraceStore

        with TraceStore(db, readonly=True) as store:
            stored = store.count()
    return {
        "spans": INGEST_SPANS,
        "stored": stored,
        "rejected_requests": errors.value,
        "seconds": elapsed,
        "spans_per_s": INGEST_SPANS / elapsed,
        "goal_spans_per_s": 20_000,
    }


def overhead_child(mode: str) -> None:
    """Run in a fresh process: time CALLS httpx calls to an in-process wsgiref server; print
    the per-call times in µs as JSON."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    if mode == "otel":
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        HTTPXClientInstrumentor().instrument()
    import httpx

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    served: Any = OpenTelemetryMiddleware(app) if mode == "otel" else app
    server = make_server("127.0.0.1", 0, served, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/"
    times = []
    with httpx.Client() as client:
        for _ in range(100):
            client.get(url)
        for _ in range(CALLS):
            t0 = time.perf_counter()
            client.get(url)
            times.append(time.perf_counter() - t0)
    server.shutdown()
    print(json.dumps([t * 1e6 for t in times]))


def bench_overhead(endpoint: str) -> dict[str, Any]:
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
    here = str(Path(__file__).resolve())
    commands = {
        "none": [sys.executable, here, "--overhead-child", "none"],
        "opentelemetry": [sys.executable, here, "--overhead-child", "otel"],
        "memlens run": [
            sys.executable,
            "-m",
            "memlens",
            "run",
            "--",
            sys.executable,
            here,
            "--overhead-child",
            "none",
        ],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    names = list(commands)
    for round_ in range(ROUNDS):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            result = subprocess.run(
                commands[name], env=env, capture_output=True, text=True, check=True
            )
            times[name] += json.loads(result.stdout.strip().splitlines()[-1])
    out: dict[str, Any] = {
        name: {
            "calls": len(values),
            "p50_us": statistics.median(values),
            "mean_us": statistics.fmean(values),
        }
        for name, values in times.items()
    }
    out["memlens_vs_opentelemetry"] = (
        out["memlens run"]["mean_us"] / out["opentelemetry"]["mean_us"]
    )
    out["goal_ratio"] = 1.2
    return out


def bench_query() -> dict[str, Any]:
    from memlens.tracing.records import SpanRecord
    from memlens.tracing.store import TraceStore
    from memlens.tracing.topology import code_index

    with tempfile.TemporaryDirectory() as tmp, TraceStore(Path(tmp) / "traces.db") as store:
        now = time.time_ns()
        batch = []
        for n in range(QUERY_SPANS):
            batch.append(
                SpanRecord(
                    trace_id=f"{n // 4 + 1:032x}",
                    span_id=f"{n + 1:016x}",
                    parent_span_id=None,
                    name="handler",
                    kind=2,
                    service="svc",
                    start_ns=now + n * 1000,
                    end_ns=now + n * 1000 + (n % 97) * 100_000,
                    attributes={
                        "code.file.path": f"/src/svc/file{n % 50}.py",
                        "code.line.number": (n // 50) % 20 + 1,
                        "code.function.name": "handler",
                    },
                )
            )
            if len(batch) == 10_000:
                store.insert(batch)
                batch = []
        times = []
        for q in range(QUERIES):
            t0 = time.perf_counter()
            stats = code_index(store, f"/src/svc/file{q % 50}.py")
            times.append(time.perf_counter() - t0)
            assert len(stats) == 20
    times.sort()
    return {
        "spans": QUERY_SPANS,
        "queries": QUERIES,
        "p50_ms": times[len(times) // 2] * 1e3,
        "p95_ms": times[int(len(times) * 0.95) - 1] * 1e3,
        "goal_p95_ms": 20,
    }


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    ingest = bench_ingest()
    with tempfile.TemporaryDirectory() as tmp:
        collector = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "memlens",
                "collector",
                "--port",
                "0",
                "--db",
                str(Path(tmp) / "t.db"),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert collector.stdout is not None
            endpoint = collector.stdout.readline().split()[-1].removesuffix("/v1/traces")
            overhead = bench_overhead(endpoint)
        finally:
            collector.terminate()
            collector.wait()
    query = bench_query()
    table = Table(title="memlens local tracing")
    for column in ("figure", "value", "goal"):
        table.add_column(column)
    table.add_row(
        "collector ingest",
        f"{ingest['spans_per_s']:,.0f} spans/s ({ingest['stored']:,}/{ingest['spans']:,} stored)",
        "≥ 20,000 spans/s",
    )
    for name in ("none", "opentelemetry", "memlens run"):
        table.add_row(
            f"HTTP call, {name}",
            f"{overhead[name]['mean_us']:.0f} µs mean (p50 {overhead[name]['p50_us']:.0f})",
            "",
        )
    table.add_row(
        "memlens run / plain OpenTelemetry",
        f"{overhead['memlens_vs_opentelemetry']:.2f}×",
        "≤ 1.2×",
    )
    table.add_row(
        "code-lens query, 100,000 spans",
        f"p95 {query['p95_ms']:.2f} ms (p50 {query['p50_ms']:.2f})",
        "< 20 ms",
    )
    Console().print(table)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "ingest": ingest,
                "overhead": overhead,
                "code_lens_query": query,
                "cpus": os.cpu_count(),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--overhead-child":
        overhead_child(sys.argv[2])
    else:
        main()
