"""memlens collector as a real process: real OpenTelemetry SDK exporters in separate
processes, hostile payloads next to valid traffic, kill -9 during ingest, and memory
metrics on /v1/metrics."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Gauge,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from memlens.tracing.collector import (
    Collector,
    CollectorConfig,
    _Batch,
    _traces,
    forward_urls,
)
from memlens.tracing.otlp import PROTOBUF as PROTOBUF_CT
from memlens.tracing.store import TraceStore, TraceStoreError
from tests.support.collector_process import RunningCollector, start_collector, stop_collector

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON_CT = {"Content-Type": "application/json"}

# MEMLENS_TRACING_LOAD=8x10000 runs the full load; the default keeps CI lean
PROCESSES, SPANS_EACH = (
    int(x) for x in os.environ.get("MEMLENS_TRACING_LOAD", "4x2000").split("x")
)

EXPORTER = textwrap.dedent(
    """
    import sys
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    url, service, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=url), max_queue_size=count + 1,
                           max_export_batch_size=512)
    )
    tracer = provider.get_tracer("load")
    for i in range(count):
        with tracer.start_as_current_span(f"op-{i % 7}", attributes={"i": i}):
            pass
    assert provider.force_flush(60_000)
    provider.shutdown()
    """
)


def _request(n: int, seed: int, service: str = "probe") -> ExportTraceServiceRequest:
    spans = [
        Span(
            trace_id=(seed * 1_000_003 + i + 1).to_bytes(16, "big"),
            span_id=(seed * 1_000_003 + i + 1).to_bytes(8, "big"),
            name=f"probe-{i}",
            kind=Span.SPAN_KIND_SERVER,
            start_time_unix_nano=1_700_000_000_000_000_000 + i,
            end_time_unix_nano=1_700_000_000_001_000_000 + i,
        )
        for i in range(n)
    ]
    resource = ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])
    resource.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value=service))
    )
    return ExportTraceServiceRequest(resource_spans=[resource])


def _span_ids(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute("SELECT span_id FROM spans")}


def test_exporter_processes_lose_no_span_while_bad_payloads_get_4xx(
    collector: RunningCollector,
) -> None:
    exporters = [
        subprocess.Popen(
            [sys.executable, "-c", EXPORTER, collector.url, f"svc{i}", str(SPANS_EACH)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    try:
        valid = _request(3, seed=99).SerializeToString()
        cut = next(
            n for n in range(len(valid) // 2, len(valid)) if not _parses(valid[:n])
        )  # a truncation protobuf itself rejects
        bad: list[tuple[bytes, dict[str, str], int]] = [
            (b"\xff\xff\xff\xff", PROTOBUF, 400),
            (valid[:cut], PROTOBUF, 400),
            (b"{not json", JSON_CT, 400),
            (b"[]", JSON_CT, 400),
            (json.dumps(_json_body("zz" * 16)).encode(), JSON_CT, 400),
            (json.dumps(_json_body("ab" * 15)).encode(), JSON_CT, 400),  # 15-byte trace id
            (json.dumps(_json_body("00" * 16)).encode(), JSON_CT, 400),  # all-zero trace id
            (b"hello", {"Content-Type": "text/plain"}, 415),
            (valid, {}, 415),
            (valid, {**PROTOBUF, "Content-Encoding": "br"}, 415),
            (gzip.compress(valid)[:-8], {**PROTOBUF, "Content-Encoding": "gzip"}, 400),
            (b"\0" * ((1 << 20) + 1), PROTOBUF, 413),
            (gzip.compress(b"\0" * (4 << 20)), {**PROTOBUF, "Content-Encoding": "gzip"}, 413),
        ]
        with httpx.Client() as client:
            for body, headers, status in bad:
                response = client.post(collector.url, content=body, headers=headers)
                assert response.status_code == status, (headers, body[:40], response.text)
            assert client.get(collector.endpoint + "/v1/logs").status_code == 404
            # valid traffic in every encoding, answered in the request's content type
            ok = client.post(collector.url, content=valid, headers=PROTOBUF)
            assert ok.status_code == 200
            assert ok.headers["content-type"] == "application/x-protobuf"
            ExportTraceServiceResponse().ParseFromString(ok.content)
            zipped = client.post(
                collector.url,
                content=gzip.compress(_request(2, seed=98).SerializeToString()),
                headers={**PROTOBUF, "Content-Encoding": "gzip"},
            )
            assert zipped.status_code == 200
            as_json = client.post(
                collector.url, content=json.dumps(_json_body("4b" * 16)), headers=JSON_CT
            )
            assert as_json.status_code == 200
            assert as_json.headers["content-type"] == "application/json"
            assert as_json.json() == {}
        for exporter in exporters:
            _, err = exporter.communicate(timeout=300)
            assert exporter.returncode == 0, err
    finally:
        for exporter in exporters:
            if exporter.poll() is None:
                exporter.kill()
                exporter.wait()
    stop_collector(collector)
    with TraceStore(collector.db, readonly=True) as store:
        assert store.count() == PROCESSES * SPANS_EACH + 3 + 2 + 1
        spans = store.trace("4b" * 16)
    assert [(s.name, s.span_id, s.service, s.attributes) for s in spans] == [
        ("json-span", "00f067aa0ba902b7", "json-svc", {"http.route": "/x", "n": 3})
    ]
    with sqlite3.connect(collector.db) as conn:
        per_service = dict(conn.execute("SELECT service, COUNT(*) FROM spans GROUP BY service"))
    for i in range(PROCESSES):
        assert per_service[f"svc{i}"] == SPANS_EACH


def _parses(body: bytes) -> bool:
    try:
        ExportTraceServiceRequest().ParseFromString(body)
    except Exception:
        return False
    return True


def _json_body(trace_id: str) -> dict[str, object]:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "t"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": "00f067aa0ba902b7",
                                "name": "json-span",
                                "kind": 2,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000005000000",
                                "attributes": [
                                    {"key": "http.route", "value": {"stringValue": "/x"}},
                                    {"key": "n", "value": {"intValue": "3"}},
                                ],
                                "someFutureField": True,
                            }
                        ],
                    }
                ],
            }
        ]
    }


def test_kill_9_during_ingest_keeps_every_acknowledged_span(tmp_path: Path) -> None:
    running = start_collector(tmp_path / "traces.db")
    acknowledged: set[str] = set()
    lock = threading.Lock()
    enough = threading.Event()
    stop = threading.Event()

    def send(worker: int) -> None:
        with httpx.Client() as client:
            for seed in range(worker * 10_000, worker * 10_000 + 10_000):
                if stop.is_set():
                    return
                request = _request(100, seed=seed)
                try:
                    response = client.post(
                        running.url, content=request.SerializeToString(), headers=PROTOBUF
                    )
                except httpx.HTTPError:
                    return  # the collector died mid-request: not acknowledged
                if response.status_code == 200:
                    ids = {s.span_id.hex() for s in request.resource_spans[0].scope_spans[0].spans}
                    with lock:
                        acknowledged.update(ids)
                        if len(acknowledged) >= 3000:
                            enough.set()

    threads = [threading.Thread(target=send, args=(w,)) for w in range(3)]
    try:
        for thread in threads:
            thread.start()
        assert enough.wait(timeout=120)
        os.kill(running.process.pid, signal.SIGKILL)
        running.process.wait()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        stop_collector(running)
    with lock:
        acked = set(acknowledged)
    with sqlite3.connect(running.db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    stored = _span_ids(running.db)
    assert acked <= stored
    assert len(acked) >= 3000


def test_collector_refuses_a_file_that_is_not_a_trace_database(tmp_path: Path) -> None:
    bad_db = tmp_path / "not-a-db"
    bad_db.write_bytes(b"this is not sqlite" * 100)
    result = subprocess.run(
        [sys.executable, "-m", "memlens", "collector", "--port", "0", "--db", str(bad_db)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "not a memlens trace database" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--port", "70000"],
        ["--forward", "ftp://x"],
        ["--max-samples", "0"],
        ["--parent-pid", "999999999"],
    ],
)
def test_collector_cli_rejects_bad_options(args: list[str], tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "memlens", "collector", "--db", str(tmp_path / "t.db"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "memlens: error:" in result.stderr


def test_forwarding_sends_every_request_upstream(tmp_path: Path) -> None:
    upstream = start_collector(tmp_path / "upstream.db")
    forwarder = start_collector(tmp_path / "local.db", "--forward", upstream.url)
    try:
        with httpx.Client() as client:
            proto = client.post(
                forwarder.url, content=_request(5, seed=1).SerializeToString(), headers=PROTOBUF
            )
            as_json = client.post(
                forwarder.url, content=json.dumps(_json_body("4b" * 16)), headers=JSON_CT
            )
        assert (proto.status_code, as_json.status_code) == (200, 200)
        stop_collector(forwarder)  # drains the forward queue before it exits
        assert forwarder.process.returncode == 0
    finally:
        stop_collector(forwarder)
        stop_collector(upstream)
    assert _span_ids(tmp_path / "upstream.db") == _span_ids(tmp_path / "local.db")
    assert len(_span_ids(tmp_path / "upstream.db")) == 6


def _samples(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT service, pid, time_ns, rss_bytes, cuda_allocated_bytes FROM memory_samples "
            "ORDER BY pid, time_ns"
        ).fetchall()


@pytest.mark.parametrize("given", ["base URL", "traces URL"])
def test_forwarding_sends_memory_metrics_upstream_too(tmp_path: Path, given: str) -> None:
    # regression: --forward sent traces upstream and kept memory metrics local
    upstream = start_collector(tmp_path / "upstream.db")
    target = upstream.endpoint if given == "base URL" else upstream.url
    forwarder = start_collector(tmp_path / "local.db", "--forward", target)
    metrics_url = forwarder.endpoint + "/v1/metrics"
    try:
        with httpx.Client() as client:
            replies = [
                client.post(metrics_url, content=_metrics_request(7, [10, 30]), headers=PROTOBUF),
                client.post(
                    metrics_url,
                    content=gzip.compress(_metrics_request(8, [5])),
                    headers={**PROTOBUF, "Content-Encoding": "gzip"},
                ),
                client.post(
                    forwarder.url, content=_request(3, seed=4).SerializeToString(), headers=PROTOBUF
                ),
            ]
        assert [r.status_code for r in replies] == [200, 200, 200]
        stop_collector(forwarder)  # drains the forward queue before it exits
        assert forwarder.process.returncode == 0
    finally:
        stop_collector(forwarder)
        stop_collector(upstream)
    assert _samples(tmp_path / "upstream.db") == _samples(tmp_path / "local.db")
    assert [row[1:4] for row in _samples(tmp_path / "upstream.db")] == [
        (7, 1000, 10),
        (7, 2000, 30),
        (8, 1000, 5),
    ]
    assert _span_ids(tmp_path / "upstream.db") == _span_ids(tmp_path / "local.db")
    assert len(_span_ids(tmp_path / "upstream.db")) == 3


@pytest.mark.parametrize(
    ("url", "traces", "metrics"),
    [
        ("http://otel:4318", "http://otel:4318/v1/traces", "http://otel:4318/v1/metrics"),
        ("http://otel:4318/", "http://otel:4318/v1/traces", "http://otel:4318/v1/metrics"),
        ("http://otel:4318/v1/traces", "http://otel:4318/v1/traces", "http://otel:4318/v1/metrics"),
        ("https://o/otlp/v1/traces", "https://o/otlp/v1/traces", "https://o/otlp/v1/metrics"),
        ("https://o/otlp", "https://o/otlp/v1/traces", "https://o/otlp/v1/metrics"),
    ],
)
def test_forward_urls_of_a_base_or_a_traces_url(url: str, traces: str, metrics: str) -> None:
    assert forward_urls(url) == {"/v1/traces": traces, "/v1/metrics": metrics}


def test_collector_applies_retention_by_span_count(tmp_path: Path) -> None:
    running = start_collector(tmp_path / "traces.db", "--max-spans", "5", "--retention-every", "0")
    try:
        with httpx.Client() as client:
            for seed in (1, 2):
                body = _request(4, seed=seed).SerializeToString()
                assert client.post(running.url, content=body, headers=PROTOBUF).status_code == 200
    finally:
        stop_collector(running)  # the writer applies retention after each batch, then exits
    newest = {(2 * 1_000_003 + i + 1).to_bytes(8, "big").hex() for i in range(4)}
    stored = _span_ids(running.db)
    assert len(stored) == 5 and newest <= stored


def _metrics_request(pid: int, rss: list[int], cuda: int | None = None) -> bytes:
    points = [NumberDataPoint(time_unix_nano=1_000 * (i + 1), as_int=v) for i, v in enumerate(rss)]
    metrics = [Metric(name="process.memory.usage", gauge=Gauge(data_points=points))]
    if cuda is not None:
        cuda_point = NumberDataPoint(time_unix_nano=1_000 * len(rss), as_double=float(cuda))
        metrics.append(
            Metric(name="memlens.cuda.memory.allocated", gauge=Gauge(data_points=[cuda_point]))
        )
    metrics.append(Metric(name="other.counter", sum=Sum(data_points=points)))  # ignored
    resource = ResourceMetrics(
        resource=Resource(
            attributes=[
                KeyValue(key="service.name", value=AnyValue(string_value="gen")),
                KeyValue(key="process.pid", value=AnyValue(int_value=pid)),
                KeyValue(key="memlens.entry_point", value=AnyValue(string_value="/srv/gen.py")),
            ]
        ),
        scope_metrics=[ScopeMetrics(metrics=metrics)],
    )
    body: bytes = ExportMetricsServiceRequest(resource_metrics=[resource]).SerializeToString()
    return body


def test_memory_metrics_in_protobuf_gzip_and_json(collector: RunningCollector) -> None:
    url = collector.endpoint + "/v1/metrics"
    as_json = json.dumps(
        {
            "resourceMetrics": [
                {
                    "resource": {
                        "attributes": [
                            {"key": "service.name", "value": {"stringValue": "js"}},
                            {"key": "process.pid", "value": {"intValue": "9"}},
                        ]
                    },
                    "scopeMetrics": [
                        {
                            "metrics": [
                                {
                                    "name": "process.memory.usage",
                                    "gauge": {
                                        "dataPoints": [{"timeUnixNano": "5", "asInt": "123"}]
                                    },
                                }
                            ]
                        }
                    ],
                }
            ]
        }
    )
    with httpx.Client() as client:
        proto = client.post(url, content=_metrics_request(7, [10, 30, 20], 4), headers=PROTOBUF)
        assert proto.status_code == 200, proto.text
        assert proto.headers["content-type"] == "application/x-protobuf"
        ExportMetricsServiceResponse().ParseFromString(proto.content)
        zipped = client.post(
            url,
            content=gzip.compress(_metrics_request(8, [5])),
            headers={**PROTOBUF, "Content-Encoding": "gzip"},
        )
        assert zipped.status_code == 200
        assert client.post(url, content=as_json, headers=JSON_CT).json() == {}
        for body, headers, status in [
            (b"\xff\xff\xff", PROTOBUF, 400),
            (b'{"resourceMetrics": 3}', JSON_CT, 400),
            (b"x", {"Content-Type": "text/plain"}, 415),
        ]:
            assert client.post(url, content=body, headers=headers).status_code == status
    stop_collector(collector)
    with TraceStore(collector.db, readonly=True) as store:
        peaks = {p.pid: p for p in store.memory_peaks()}
        assert store.count() == 0
    assert (peaks[7].peak_rss_bytes, peaks[7].latest_rss_bytes, peaks[7].latest_ns) == (
        30,
        20,
        3000,
    )
    assert (peaks[7].service, peaks[7].entry_point) == ("gen", "/srv/gen.py")
    assert (peaks[8].peak_rss_bytes, peaks[9].service, peaks[9].entry_point) == (5, "js", None)
    with sqlite3.connect(collector.db) as conn:
        cuda = conn.execute(
            "SELECT time_ns, cuda_allocated_bytes FROM memory_samples "
            "WHERE pid = 7 ORDER BY time_ns"
        ).fetchall()
    assert cuda == [(1000, None), (2000, None), (3000, 4)]


def _gauge(value: float | int, time_ns: int = 5) -> bytes:
    which = {"as_double": value} if isinstance(value, float) else {"as_int": value}
    point = NumberDataPoint(time_unix_nano=time_ns, **which)
    metric = Metric(name="process.memory.usage", gauge=Gauge(data_points=[point]))
    request = ExportMetricsServiceRequest(
        resource_metrics=[ResourceMetrics(scope_metrics=[ScopeMetrics(metrics=[metric])])]
    )
    body: bytes = request.SerializeToString()
    return body


def test_numbers_the_store_cannot_hold_get_400_and_ingest_goes_on(
    collector: RunningCollector,
) -> None:
    """Bad inputs tried: gauge values NaN, inf, -1 and 1e30; a sample time and a span start
    past 2**63 - 1 ns; ``code.lineno`` "²" (a digit int() refuses) and 30 digits. The
    writer used to die on the first of these, leaving every later request unanswered."""
    metrics = collector.endpoint + "/v1/metrics"
    late = _request(1, seed=5)
    late.resource_spans[0].scope_spans[0].spans[0].start_time_unix_nano = 2**64 - 1
    odd_lines = _request(2, seed=6)
    spans = odd_lines.resource_spans[0].scope_spans[0].spans
    for span, line in zip(spans, ("²", "9" * 30), strict=True):
        span.attributes.append(KeyValue(key="code.lineno", value=AnyValue(string_value=line)))
        span.attributes.append(KeyValue(key="code.filepath", value=AnyValue(string_value="/a.py")))
    with httpx.Client(timeout=30) as client:
        for body, url in [
            (_gauge(float("nan")), metrics),
            (_gauge(float("inf")), metrics),
            (_gauge(-1), metrics),
            (_gauge(1e30), metrics),
            (_gauge(10, time_ns=2**64 - 1), metrics),
            (late.SerializeToString(), collector.url),
        ]:
            reply = client.post(url, content=body, headers=PROTOBUF)
            assert reply.status_code == 400, reply.text
        assert "not a byte count" in client.post(metrics, content=_gauge(-1), headers=PROTOBUF).text
        for body, url in [
            (odd_lines.SerializeToString(), collector.url),
            (_request(3, seed=7).SerializeToString(), collector.url),
            (_gauge(10), metrics),
        ]:
            assert client.post(url, content=body, headers=PROTOBUF).status_code == 200
    stop_collector(collector)
    with TraceStore(collector.db, readonly=True) as store:
        assert store.count() == 5
        assert [p.peak_rss_bytes for p in store.memory_peaks()] == [10]
        assert len(store.spans_at("/a.py")) == 2
        assert [line for _p, line, *_ in store.code_durations("/a.py")] == [0, 0], "no line"


def test_a_batch_the_database_refuses_fails_alone(tmp_path: Path) -> None:
    """Two requests written together, one with a start SQLite cannot hold: the other is
    stored and only the refused one carries the error (both used to get a 500)."""
    config = CollectorConfig(db_path=tmp_path / "traces.db", port=0)
    collector = Collector(config)
    good = _Batch(_traces, _request(2, seed=8).SerializeToString(), PROTOBUF_CT, None)
    bad = _Batch(_traces, _request(1, seed=9).SerializeToString(), PROTOBUF_CT, None)
    for batch in (good, bad):
        batch.decode(batch)
    bad.spans = [(*bad.spans[0][:6], 2**64, *bad.spans[0][7:])]  # type: ignore[list-item]
    with TraceStore(config.db_path) as store:
        collector._commit(store, [good, bad])
        assert store.count() == 2
    collector._server.server_close()
    assert good.done.is_set() and good.error is None
    assert bad.done.is_set() and isinstance(bad.error, OverflowError)


def test_a_request_that_arrives_while_stopping_is_refused_not_stranded(tmp_path: Path) -> None:
    """A handler still reading its body when stop() runs queues after the writer's last
    batch; it used to wait for a commit forever. Now it gets False (503)."""
    collector = Collector(CollectorConfig(db_path=tmp_path / "traces.db", port=0))
    collector.start()
    collector.stop()
    batch = _Batch(_traces, _request(1, seed=10).SerializeToString(), PROTOBUF_CT, None)
    answers: list[bool] = []
    late = threading.Thread(target=lambda: answers.append(collector.ingest(batch)), daemon=True)
    late.start()
    late.join(timeout=20)
    assert answers == [False]
    with TraceStore(tmp_path / "traces.db", readonly=True) as store:
        assert store.count() == 0


def test_a_collector_that_cannot_open_its_store_never_binds_the_port(tmp_path: Path) -> None:
    """Bad input tried: a folder where the database goes. The port used to be bound (and
    answer) before the store failed, so the language server took the dying collector for a
    running one and said nothing."""
    folder = tmp_path / "traces.db"
    folder.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    with pytest.raises(TraceStoreError, match="not a memlens trace database") as raised:
        Collector(CollectorConfig(db_path=folder, port=port))
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))  # free: nothing listens there
    assert raised.value is not None
