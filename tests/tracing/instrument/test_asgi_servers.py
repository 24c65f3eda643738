"""``memlens run`` instruments incoming ASGI requests (uvicorn, hypercorn) in real service
processes: server spans continue the caller's trace and point at the handler."""

from __future__ import annotations

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

from memlens.tracing.store import TraceStore
from tests.support.collector_process import RunningCollector, stop_collector
from tests.support.traced_service import line_of, location_of, run_traced

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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    process = run_traced(
        collector, tmp_path, sys.executable, *(a.format(port=port) for a in server)
    )
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
    app_line = line_of(ASGI_APP, "async def app(")
    with TraceStore(collector.db, readonly=True) as store:
        for trace_id, span_id in callers.items():
            spans = store.trace(trace_id)
            [root] = [s for s in spans if s.kind == 2]
            assert root.parent_span_id == span_id, output
            assert (root.name, root.attributes["http.target"]) == (
                f"GET /r/{trace_id[-2:]}",
                f"/r/{trace_id[-2:]}",
            )
            assert location_of(root) == (str(tmp_path / "app.py"), app_line, "app")
