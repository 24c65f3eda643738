"""Tracing in the editor, through a real LSP client: with ``memlens.tracing.enabled`` the
server starts the local collector, a real service under ``memlens run`` sends it spans and
memory samples, and the server answers with code lenses above the functions that made
spans, the ``memlens.traces`` report (and ``memlens/traceReport`` notification), and the
``run-memory`` diagnostic at the script's entry point; shutting down stops the collector."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient

from memlens.lsp_server.traces.collector_process import port_answers
from tests.support.lsp_client import SERVER_ENV, open_document, session

SERVICE = """\
import time

from opentelemetry import trace

tracer = trace.get_tracer("demo")


def answer(question):
    with tracer.start_as_current_span("answer"):
        time.sleep(0.01)
        return question.upper()


if __name__ == "__main__":
    ballast = bytearray(64 * 1024 * 1024)
    for q in ("a", "b", "c"):
        with tracer.start_as_current_span("request"):
            answer(q)
    time.sleep(2.5)
"""
ANSWER_DEF_LINE = 7
SPAN_LINE = 8
MAIN_GUARD_LINE = 13
WAIT_S = 120.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PORT = _free_port()
TRACES: list[Any] = []
"""``memlens/traceReport`` notifications the client received."""
STARTED: list[int] = []
"""The port of a collector the first test saw started."""


def _tracing_workspace() -> Path:
    return Path(tempfile.mkdtemp(prefix="memlens-tracing-"))


SERVER = ClientServerConfig(
    server_command=[sys.executable, "-m", "memlens.lsp_server"], server_env=SERVER_ENV
)


@pytest.fixture(scope="module")
def traced_workspace() -> Path:
    return _tracing_workspace()


@pytest_lsp.fixture(config=SERVER)
async def tracing_client(lsp_client: LanguageClient, traced_workspace: Path) -> AsyncIterator[None]:
    """Tracing on, a 32 MiB budget (the service holds 64 MiB), the collector on PORT."""
    lsp_client.feature("memlens/traceReport")(lambda params: TRACES.append(params))
    options = {"memoryBudget": "32MiB", "tracing": {"enabled": True}, "collector": {"port": PORT}}
    async for _ in session(lsp_client, traced_workspace, options):
        yield


async def _until(check: Callable[[], Any], what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not (found := check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)
    return found


async def _lenses(client: LanguageClient, uri: str) -> list[types.CodeLens]:
    return await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )


async def test_collector_starts_and_a_run_service_gets_lenses_report_and_diagnostic(
    tracing_client: LanguageClient, traced_workspace: Path
) -> None:
    await _until(lambda: port_answers(PORT), "the collector the server starts")
    script = traced_workspace / "service.py"
    uri = open_document(tracing_client, script, SERVICE)
    env = {**os.environ, "MEMLENS_MEMORY_INTERVAL_S": "0.2"}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    env.pop("OTEL_SERVICE_NAME", None)
    run = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "memlens", "run", "--endpoint", f"http://127.0.0.1:{PORT}"),
        *("--", sys.executable, str(script)),
        cwd=traced_workspace,
        env=env,
    )
    assert await run.wait() == 0

    async def trace_lenses() -> list[types.CodeLens]:
        return [
            lens
            for lens in await _lenses(tracing_client, uri)
            if lens.command and lens.command.command == "memlens.openTrace"
        ]

    found: list[types.CodeLens] = []
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not found and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.5)
        found = await trace_lenses()
    assert len(found) == 1, "one lens: the spans made inside answer()"
    lens = found[0]
    assert lens.range.start.line == ANSWER_DEF_LINE
    assert lens.command is not None
    assert lens.command.title.startswith("3 traces · p50 ")
    assert lens.command.title.endswith(" ms · open")
    trace_id = lens.command.arguments[0]["trace_id"]

    report = await tracing_client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="memlens.traces", arguments=[{"trace_id": trace_id}])
    )
    assert len(report["traces"]) == 3
    spans = report["trace"]["spans"]
    assert {s["name"] for s in spans} == {"request", "answer"}
    answer = next(s for s in spans if s["name"] == "answer")
    assert answer["service"] == "service"
    assert answer["location"] == {"path": str(script), "line": SPAN_LINE + 1, "function": "answer"}
    row = next(r for r in report["trace"]["rows"] if r["name"] == "answer")
    assert row["location"] == answer["location"] and row["depth"] == 1
    notified = await _until(lambda: [t for t in TRACES if t.trace], "memlens/traceReport")
    assert notified[-1].trace.trace_id == trace_id
    STARTED.append(PORT)

    def run_memory() -> list[types.Diagnostic]:
        return [d for d in tracing_client.diagnostics.get(uri, []) if d.code == "run-memory"]

    (diagnostic,) = await _until(run_memory, "the run-memory diagnostic")
    assert diagnostic.range.start.line == MAIN_GUARD_LINE
    assert "over the 32.0 MiB memory budget" in diagnostic.message
    assert "`memlens run`" in diagnostic.message


async def test_bad_traces_arguments_are_errors(tracing_client: LanguageClient) -> None:
    for arguments in ([{"trace_id": "not-hex"}], ["a", "b"], [{"trace_id": 7}]):
        with pytest.raises(JsonRpcException, match=r"trace_id|arguments must be"):
            await tracing_client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="memlens.traces", arguments=arguments)
            )


@pytest_lsp.fixture(config=SERVER)
async def broken_store_client(lsp_client: LanguageClient) -> AsyncIterator[None]:
    """Tracing on where the store path is a folder: the collector cannot open it."""
    folder = _tracing_workspace()
    (folder / ".memlens" / "traces.db").mkdir(parents=True)
    options = {"tracing": {"enabled": True}, "collector": {"port": _free_port()}}
    async for _ in session(lsp_client, folder, options):
        yield


async def test_a_collector_that_cannot_start_is_reported(
    broken_store_client: LanguageClient,
) -> None:
    message = await _until(
        lambda: [m for m in broken_store_client.messages if "collector" in m.message],
        "the warning about the collector",
    )
    assert message[0].type == types.MessageType.Warning
    assert "exited with code" in message[0].message


def test_shutdown_stopped_the_collector() -> None:
    """Runs after the sessions above ended (module order): nothing listens on PORT."""
    if not STARTED:
        pytest.skip("runs after the end-to-end test only")
    assert not port_answers(PORT)


@pytest_lsp.fixture(config=SERVER)
async def busy_port_client(lsp_client: LanguageClient) -> AsyncIterator[None]:
    """Tracing on where something already listens on the collector port (a collector the
    server started there would fail and say so)."""
    folder = _tracing_workspace()
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        options = {"tracing": {"enabled": True}, "collector": {"port": listening.getsockname()[1]}}
        async for _ in session(lsp_client, folder, options):
            yield


async def test_no_collector_is_started_where_one_listens(
    busy_port_client: LanguageClient,
) -> None:
    summary = await busy_port_client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="memlens.traces", arguments=[])
    )
    assert summary == {
        "version": 1,
        "services": [],
        "nodes": [],
        "edges": [],
        "traces": [],
        "trace": None,
        "jaeger_url": None,
    }
    assert not busy_port_client.messages
