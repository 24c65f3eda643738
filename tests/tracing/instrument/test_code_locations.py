"""memlens.tracing.instrument.code_locations: what is user code, the calling line of client
spans, the handler of server spans (also on one event loop)."""

from __future__ import annotations

import json
import os
import sys
import sysconfig
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from memlens.tracing.instrument.code_locations import CodeLocationSpanProcessor, is_user_code


def test_user_code_excludes_stdlib_site_packages_memlens_and_generated() -> None:
    assert is_user_code(__file__)
    assert not is_user_code(json.__file__)
    assert not is_user_code(httpx.__file__)
    assert not is_user_code(str(Path(sysconfig.get_paths()["purelib"]) / "x.py"))
    assert not is_user_code(
        os.path.join(os.path.dirname(is_user_code.__code__.co_filename), "x.py")
    )
    assert not is_user_code("<string>")
    memlens_dir = str(Path(is_user_code.__code__.co_filename).parents[2])
    assert is_user_code(memlens_dir + "_app/main.py"), "a sibling that shares the prefix"


def _provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(CodeLocationSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def handler() -> None:
    pass


def test_client_spans_get_the_calling_line_and_server_spans_the_handler() -> None:
    provider, exporter = _provider()
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("call", kind=SpanKind.CLIENT):
        line = _this_line() - 1
    with tracer.start_as_current_span("request", kind=SpanKind.SERVER):
        handler()
    with tracer.start_as_current_span(
        "own", kind=SpanKind.CLIENT, attributes={"code.filepath": "/x.py", "code.lineno": 1}
    ):
        pass
    call, request, own = exporter.get_finished_spans()
    assert call.attributes is not None and request.attributes is not None
    assert call.attributes["code.file.path"] == str(Path(__file__).resolve())
    assert call.attributes["code.line.number"] == line
    assert str(call.attributes["code.function.name"]).endswith(
        "test_client_spans_get_the_calling_line_and_server_spans_the_handler"
    )
    assert request.attributes["code.function.name"] == "handler"
    assert request.attributes["code.line.number"] == handler.__code__.co_firstlineno
    assert [e.name for e in request.events] == ["memlens.memory"]
    assert own.attributes is not None and "code.file.path" not in own.attributes


def _this_line() -> int:
    import inspect

    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno


# a framework's request loop; compiled under a name that is not user code
FRAMEWORK = """
async def serve(tracer, name, gate, handler):
    with tracer.start_as_current_span(name, kind=SERVER):
        await gate.wait()  # the framework reads the request; other tasks run meanwhile
        await handler()
"""


async def handler_a() -> None:
    pass


async def handler_b() -> None:
    pass


def test_concurrent_server_spans_on_one_event_loop_get_their_own_handlers() -> None:
    """Regression: the second request's span got no location, and the first one got the
    handler of whichever request reached user code first."""
    import asyncio

    namespace: dict[str, Any] = {"SERVER": SpanKind.SERVER}
    exec(compile(FRAMEWORK, "<framework>", "exec"), namespace)
    provider, exporter = _provider()
    tracer = provider.get_tracer("t")

    async def main() -> None:
        gate_a, gate_b = asyncio.Event(), asyncio.Event()
        a = asyncio.create_task(namespace["serve"](tracer, "a", gate_a, handler_a))
        b = asyncio.create_task(namespace["serve"](tracer, "b", gate_b, handler_b))
        await asyncio.sleep(0.01)  # both spans started, both waiting
        gate_b.set()
        await b
        gate_a.set()
        await a

    asyncio.run(main())
    functions = {
        s.name: (s.attributes or {}).get("code.function.name")
        for s in exporter.get_finished_spans()
    }
    assert functions == {"a": "handler_a", "b": "handler_b"}
    assert sys.getprofile() is None  # the hook removed itself
