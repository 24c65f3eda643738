"""``memlens run`` instruments incoming ASGI (uvicorn, hypercorn) and ``grpc.aio`` calls in
real service processes: server spans continue the caller's trace and point at the handler."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest

from memlens.tracing.records import SpanRecord
from memlens.tracing.store import TraceStore
from tests.tracing.conftest import RunningCollector, stop_collector

ASGI_APP = textwrap.dedent(
    """
    import asyncio


    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await asyncio.sleep(0.05)  # requests overlap on the one event loop
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})
    """
)

GRPC_AIO = textwrap.dedent(
    """
    import asyncio

    import grpc


    async def say(request, context):
        return b"hi " + request


    async def main():
        server = grpc.aio.server()
        handlers = {"Say": grpc.unary_unary_rpc_method_handler(say)}
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("demo.Echo", handlers),)
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            print((await channel.unary_unary("/demo.Echo/Say")(b"x")).decode(), flush=True)
        await server.stop(None)


    asyncio.run(main())
    """
)


def _line_of(source: str, text: str) -> int:
    return next(i for i, line in enumerate(source.splitlines(), 1) if text in line)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _traced(collector: RunningCollector, cwd: Path, *command: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "memlens", "run", "--endpoint", collector.endpoint, "--", *command],
        cwd=cwd,
        env={**os.environ, "MEMLENS_MEMORY": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_until_serving(process: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            assert process.stdout is not None
            raise AssertionError(f"server exited: {process.stdout.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not start listening")


@pytest.mark.parametrize(
    "server",
    [
        ["-m", "uvicorn", "app:app", "--port", "{port}", "--log-level", "warning"],
        ["-m", "hypercorn", "app:app", "--bind", "127.0.0.1:{port}"],
    ],
    ids=["uvicorn", "hypercorn"],
)
def test_asgi_servers_make_server_spans_at_the_app(
    server: list[str], collector: RunningCollector, tmp_path: Path
) -> None:
    (tmp_path / "app.py").write_text(ASGI_APP)
    port = _free_port()
    process = _traced(collector, tmp_path, sys.executable, *(a.format(port=port) for a in server))
    callers = {f"{i + 1:032x}": f"{i + 1:016x}" for i in range(6)}
    try:
        _wait_until_serving(process, port)

        def call(trace_id: str, span_id: str) -> None:
            traceparent = f"00-{trace_id}-{span_id}-01"
            response = httpx.get(
                f"http://127.0.0.1:{port}/r/{trace_id[-2:]}", headers={"traceparent": traceparent}
            )
            assert response.status_code == 200

        threads = [threading.Thread(target=call, args=item) for item in callers.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        process.send_signal(signal.SIGTERM)  # the servers shut down; atexit flushes spans
        output, _ = process.communicate(timeout=60)
    stop_collector(collector)
    app_line = _line_of(ASGI_APP, "async def app(")
    with TraceStore(collector.db, readonly=True) as store:
        for trace_id, span_id in callers.items():
            spans = store.trace(trace_id)
            [root] = [s for s in spans if s.kind == 2]
            assert root.parent_span_id == span_id, output
            assert (root.name, root.attributes["http.target"]) == (
                f"GET /r/{trace_id[-2:]}",
                f"/r/{trace_id[-2:]}",
            )
            assert _location(root) == (str(tmp_path / "app.py"), app_line, "app")


def _location(span: SpanRecord) -> tuple[object, object, object]:
    return tuple(
        span.attributes.get(key)
        for key in ("code.file.path", "code.line.number", "code.function.name")
    )  # type: ignore[return-value]


def test_grpc_aio_client_and_server_spans_share_one_trace(
    collector: RunningCollector, tmp_path: Path
) -> None:
    (tmp_path / "echo.py").write_text(GRPC_AIO)
    process = _traced(collector, tmp_path, sys.executable, "echo.py")
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert "hi x" in output
    stop_collector(collector)
    with TraceStore(collector.db, readonly=True) as store:
        [trace_id] = store.recent_trace_ids(10)
        spans = store.trace(trace_id)
    [client] = [s for s in spans if s.kind == 3]
    [server] = [s for s in spans if s.kind == 2]
    assert client.name == server.name == "/demo.Echo/Say"
    assert server.parent_span_id == client.span_id
    assert _location(server) == (str(tmp_path / "echo.py"), _line_of(GRPC_AIO, "def say("), "say")
    # the span starts in a task of grpc's own; the location is still the line of the call
    call_line = _line_of(GRPC_AIO, 'unary_unary("/demo.Echo/Say")')
    assert _location(client) == (str(tmp_path / "echo.py"), call_line, "main")
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
