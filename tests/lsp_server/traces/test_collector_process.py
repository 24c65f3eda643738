"""memlens.lsp_server.traces.collector_process: the collector a real language server starts
does not outlive it. The server is killed with SIGKILL (no shutdown, no clean-up of its
own); its collector notices, stores what it acknowledged, and exits."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import httpx
import psutil
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from memlens.lsp_server.traces.collector_process import port_answers
from memlens.tracing.store import TraceStore
from tests.support.lsp_client import SERVER_ENV

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _send(stdin: IO[bytes], message: dict[str, Any]) -> None:
    body = json.dumps({"jsonrpc": "2.0", **message}).encode()
    stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    stdin.flush()


def _answer_requests(server: subprocess.Popen[bytes]) -> None:
    """Read the server's messages; answer its requests to the client with null."""
    assert server.stdout is not None and server.stdin is not None
    while True:
        length = 0
        while (line := server.stdout.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        if not line:
            return
        message = json.loads(server.stdout.read(length))
        if "method" in message and "id" in message:
            try:
                _send(server.stdin, {"id": message["id"], "result": None})
            except OSError:
                return


def _spans(n: int, seed: int) -> bytes:
    spans = [
        Span(
            trace_id=(seed * 1000 + i + 1).to_bytes(16, "big"),
            span_id=(seed * 1000 + i + 1).to_bytes(8, "big"),
            name=f"op-{i}",
            start_time_unix_nano=1_000_000_000 + i,
            end_time_unix_nano=1_000_000_500 + i,
        )
        for i in range(n)
    ]
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]
    )
    body: bytes = request.SerializeToString()
    return body


def _until(check: Any, what: str, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
    return found


def test_the_collector_exits_when_its_server_is_killed(tmp_path: Path) -> None:
    # regression: a collector whose server crashed kept running, and the next server
    # reused it without ever stopping it
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "memlens.lsp_server"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=SERVER_ENV,
    )
    assert server.stdin is not None
    collector: psutil.Process | None = None
    try:
        threading.Thread(target=_answer_requests, args=(server,), daemon=True).start()
        options = {"memlens": {"tracing": {"enabled": True}, "collector": {"port": port}}}
        _send(
            server.stdin,
            {
                "id": 1,
                "method": "initialize",
                "params": {
                    "processId": os.getpid(),
                    "rootUri": tmp_path.as_uri(),
                    "capabilities": {},
                    "initializationOptions": options,
                },
            },
        )
        _send(server.stdin, {"method": "initialized", "params": {}})
        _until(lambda: port_answers(port), "the collector the server starts")
        (collector,) = [
            p for p in psutil.Process(server.pid).children() if "collector" in p.cmdline()
        ]
        url = f"http://127.0.0.1:{port}/v1/traces"
        headers = {"Content-Type": "application/x-protobuf"}
        with httpx.Client() as client:
            for seed in range(5):
                reply = client.post(url, content=_spans(20, seed), headers=headers)
                assert reply.status_code == 200  # acknowledged: must be stored

        server.send_signal(signal.SIGKILL)
        collector.wait(timeout=10)  # gone within a few seconds (it polls every 0.5 s)
        assert not port_answers(port)
    finally:
        server.kill()
        server.wait()
        if collector is not None and collector.is_running():
            collector.kill()
    with TraceStore(tmp_path / ".memlens" / "traces.db", readonly=True) as store:
        assert store.count() == 100
