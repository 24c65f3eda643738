"""``memlens run`` instruments ``grpc.aio`` calls in a real service process: the client
and server spans share one trace, and the client span points at the line of the call."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

from memlens.tracing.store import TraceStore
from tests.support.collector_process import RunningCollector, stop_collector
from tests.support.traced_service import line_of, location_of, run_traced

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


def test_grpc_aio_client_and_server_spans_share_one_trace(
    collector: RunningCollector, tmp_path: Path
) -> None:
    (tmp_path / "echo.py").write_text(GRPC_AIO)
    process = run_traced(collector, tmp_path, sys.executable, "echo.py")
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
    assert location_of(server) == (str(tmp_path / "echo.py"), line_of(GRPC_AIO, "def say("), "say")
    # the span starts in a task of grpc's own; the location is still the line of the call
    call_line = line_of(GRPC_AIO, 'unary_unary("/demo.Echo/Say")')
    assert location_of(client) == (str(tmp_path / "echo.py"), call_line, "main")
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
