"""What ``memlens run`` installs in a Python service, before its own code runs.

:func:`bootstrap` is called from the ``sitecustomize`` that ``memlens run`` puts first on
the child's ``PYTHONPATH``. It configures the OpenTelemetry SDK (service name from
``OTEL_SERVICE_NAME``; OTLP/HTTP to ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``, which ``memlens
run`` points at the local collector unless set; batch export flushed at exit and on
SIGTERM), the propagators ``OTEL_PROPAGATORS`` names, the client/server instrumentation of
whichever of requests, httpx, urllib3, gRPC (sync and ``grpc.aio``), ``wsgiref`` and the ASGI
servers uvicorn and hypercorn are installed (ASGI has no global server registry: an app
served some other way needs OpenTelemetry's ASGI middleware in its own code), and
:class:`CodeLocationSpanProcessor`, which puts ``code.file.path``, ``code.line.number`` and
``code.function.name`` on spans and a ``memlens.memory`` event (RSS, and CUDA allocator
bytes when torch is already loaded) on server spans. Unless ``MEMLENS_MEMORY=0``, it also
starts the periodic memory metrics of :mod:`memlens.tracing.memory`.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import signal
import sys
import sysconfig
import threading
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from types import CodeType, FrameType, ModuleType
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagate import set_global_textmap
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

from memlens.tracing.memory import entry_point, interval_from_env, start_memory_metrics
from memlens.tracing.otlp_metrics import ENTRY_POINT
from memlens.tracing.propagation import propagator_from_env

__all__ = ["CodeLocationSpanProcessor", "bootstrap", "instrument_libraries", "is_user_code"]

_log = logging.getLogger(__name__)

_LIBRARY_DIRS = tuple(
    {
        # with the separator: /srv/memlens_app is not inside /srv/memlens
        os.path.join(Path(p).resolve(), "")
        for key in ("stdlib", "platstdlib", "purelib", "platlib")
        if (p := sysconfig.get_paths().get(key))
    }
    | {os.path.join(Path(__file__).resolve().parents[1], "")}  # memlens itself
)
_user_file_cache: dict[str, bool] = {}


def is_user_code(filename: str) -> bool:
    """Whether a frame's file is the service's own code: not the stdlib, not an installed
    package, not memlens, not generated (``<string>``, ``<frozen ...>``)."""
    known = _user_file_cache.get(filename)
    if known is None:
        if filename.startswith("<"):
            known = False
        else:
            resolved = str(Path(filename).resolve())
            known = not resolved.startswith(_LIBRARY_DIRS) and "site-packages" not in resolved
        _user_file_cache[filename] = known
    return known


_CODE_KEYS = ("code.file.path", "code.filepath")


class CodeLocationSpanProcessor(SpanProcessor):
    """Adds the code location that made each span, and memory samples to server spans.

    A client or internal span gets the innermost user frame: the line that made the call
    (for a ``grpc.aio`` call, whose span starts in a task of grpc's own, the line recorded
    when the call was made).
    A server span (an incoming request) gets the first user function the framework calls
    after starting it (the handler's ``def`` line), found with a per-thread profile hook
    that removes itself at that first call or when the span ends. Attributes already set
    are kept.
    """

    def __init__(self, sample_memory: bool = True) -> None:
        self._sample_memory = sample_memory
        # thread id -> server spans awaiting their handler (several on an asyncio loop)
        self._pending: dict[int, dict[Span, None]] = {}
        self._process: Any = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        attributes = span.attributes or {}
        if self._sample_memory and span.kind in (SpanKind.SERVER, SpanKind.CONSUMER):
            self._add_memory_event(span)
        if any(key in attributes for key in _CODE_KEYS):
            return
        if span.kind in (SpanKind.SERVER, SpanKind.CONSUMER):
            # user frames below a server span are the serve loop, not the handler
            self._await_handler(span)
            return
        caller = _innermost_user_frame(sys._getframe(1))
        if caller is None:
            caller = _CALL_SITE.get()  # a library's own task: where the call was made
        if caller is not None:
            _set_location(span, *caller)

    def _await_handler(self, span: Span) -> None:
        thread = threading.get_ident()
        pending = self._pending.get(thread)
        if pending is None:
            if sys.getprofile() is not None:
                return  # someone else profiles this thread; leave it alone
            pending = self._pending[thread] = {}
            sys.setprofile(self._hook(thread, pending))
        pending[span] = None

    def _hook(self, thread: int, pending: dict[Span, None]) -> Callable[..., None]:
        def hook(frame: FrameType, event: str, arg: object) -> None:
            if event != "call" or not is_user_code(frame.f_code.co_filename):
                return
            # on an event loop the user function may belong to another request's task:
            # it is this span's handler only while this span is the task's current one
            span = trace.get_current_span()
            if span not in pending:
                return
            del pending[span]
            if span.is_recording():
                _set_location(span, frame.f_code, frame.f_code.co_firstlineno)
            if not pending:
                self._stop_hook(thread)

        return hook

    def _stop_hook(self, thread: int) -> None:
        del self._pending[thread]
        sys.setprofile(None)

    def on_end(self, span: ReadableSpan) -> None:
        thread = threading.get_ident()
        pending = self._pending.get(thread)
        if pending is None or span not in pending:
            return
        del pending[span]
        if not pending:
            self._stop_hook(thread)

    def _add_memory_event(self, span: Span) -> None:
        if self._process is None:
            import psutil

            self._process = psutil.Process()
        sample: dict[str, int] = {"process.memory.rss": int(self._process.memory_info().rss)}
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            sample["cuda.memory.allocated"] = int(torch.cuda.memory_allocated())
            sample["cuda.memory.reserved"] = int(torch.cuda.memory_reserved())
        span.add_event("memlens.memory", sample)

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing buffered here."""
        return True


_loop_step: list[CodeType] = []


def _loop_step_code() -> CodeType | None:
    """The code of asyncio's ``Handle._run`` (which steps every task), once asyncio is
    imported; None before (memlens does not import asyncio into the service)."""
    if not _loop_step:
        asyncio = sys.modules.get("asyncio")
        if asyncio is None:
            return None
        _loop_step.append(asyncio.events.Handle._run.__code__)
    return _loop_step[0]


def _innermost_user_frame(frame: FrameType | None) -> tuple[CodeType, int] | None:
    """(code, line) of the innermost user frame, not looking past the step of an asyncio
    task: the frames above it are the event loop's caller, not the caller of the task."""
    loop_step = _loop_step_code()
    while frame is not None:
        if is_user_code(frame.f_code.co_filename):
            return frame.f_code, frame.f_lineno
        if frame.f_code is loop_step:
            return None
        frame = frame.f_back
    return None


_CALL_SITE: ContextVar[tuple[CodeType, int] | None] = ContextVar("memlens_call_site", default=None)
"""The user line that made a call whose span starts in a task of the library's own (the
task inherits this context from the call)."""


def _remembering_call_site(call: Callable[..., Any]) -> Callable[..., Any]:
    def remembered(*args: Any, **kwargs: Any) -> Any:
        token = _CALL_SITE.set(_innermost_user_frame(sys._getframe(1)))
        try:
            return call(*args, **kwargs)
        finally:
            _CALL_SITE.reset(token)

    remembered._memlens = True  # type: ignore[attr-defined]
    return remembered


def _patch_grpc_aio_calls(channel: ModuleType) -> None:
    """Remember the caller of each ``grpc.aio`` call: its client span starts in a task that
    grpc creates, where no user frame is on the stack."""
    for name in (
        "UnaryUnaryMultiCallable",
        "UnaryStreamMultiCallable",
        "StreamUnaryMultiCallable",
        "StreamStreamMultiCallable",
    ):
        callable_class = getattr(channel, name, None)
        if callable_class is not None and not getattr(callable_class.__call__, "_memlens", False):
            callable_class.__call__ = _remembering_call_site(callable_class.__call__)


_resolved: dict[str, str] = {}


def _set_location(span: Span, code: Any, line: int) -> None:
    path = _resolved.get(code.co_filename)
    if path is None:  # resolve() costs a few lstat calls: once per file, not per span
        path = _resolved[code.co_filename] = str(Path(code.co_filename).resolve())
    span.set_attribute("code.file.path", path)
    span.set_attribute("code.line.number", line)
    span.set_attribute("code.function.name", code.co_qualname)


def _instrument_wsgiref() -> None:
    """Wrap every app served by ``wsgiref.simple_server`` in OpenTelemetry's middleware."""
    from wsgiref import simple_server

    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

    original: Callable[..., None] = simple_server.WSGIServer.set_app
    if getattr(original, "_memlens", False):
        return

    def set_app(self: simple_server.WSGIServer, application: Any) -> None:
        original(self, OpenTelemetryMiddleware(application))

    set_app._memlens = True  # type: ignore[attr-defined]
    simple_server.WSGIServer.set_app = set_app  # type: ignore[method-assign]


def _after_import(module: str, patch: Callable[[ModuleType], None]) -> Callable[[], None]:
    """An installer that patches ``module`` once it is imported (now, if it already is):
    servers are not imported into every traced process just to be instrumented."""

    def install() -> None:
        import wrapt

        wrapt.register_post_import_hook(patch, module)

    return install


def _patch_uvicorn(config_module: ModuleType) -> None:
    """Wrap the app every ``uvicorn.Config`` loads (``uvicorn app:app``, ``uvicorn.run``,
    reload and worker processes alike) in OpenTelemetry's ASGI middleware: after uvicorn's
    own adapters, so WSGI and ASGI2 apps are covered, and around its proxy-headers
    middleware, so the client address recorded is the proxy's."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    config = config_module.Config
    original: Callable[[Any], None] = config.load
    if getattr(original, "_memlens", False):
        return

    def load(self: Any) -> None:
        original(self)
        if not isinstance(self.loaded_app, OpenTelemetryMiddleware):
            self.loaded_app = OpenTelemetryMiddleware(self.loaded_app)

    load._memlens = True  # type: ignore[attr-defined]
    config.load = load


def _patch_hypercorn(utils: ModuleType) -> None:
    """Wrap the app hypercorn serves (``hypercorn app:app``, ``hypercorn.asyncio.serve``) in
    OpenTelemetry's ASGI or WSGI middleware, whichever hypercorn would serve it as."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware as ASGIMiddleware
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware as WSGIMiddleware

    original: Callable[..., Any] = utils.wrap_app
    if getattr(original, "_memlens", False):
        return

    def wrap_app(app: Any, wsgi_max_body_size: int, mode: str | None) -> Any:
        if mode is None:
            mode = "asgi" if utils.is_asgi(app) else "wsgi"
        middleware = ASGIMiddleware if mode == "asgi" else WSGIMiddleware
        return original(middleware(app), wsgi_max_body_size, mode)

    wrap_app._memlens = True  # type: ignore[attr-defined]
    setattr(utils, "wrap_app", wrap_app)  # noqa: B010 (a module attribute mypy cannot see)


def _instrumentor(module: str, name: str) -> Callable[[], None]:
    def install() -> None:
        getattr(importlib.import_module(module), name)().instrument()

    return install


_INSTRUMENTATIONS: dict[str, tuple[str, Callable[[], None]]] = {
    "requests": (
        "requests",
        _instrumentor("opentelemetry.instrumentation.requests", "RequestsInstrumentor"),
    ),
    "httpx": (
        "httpx",
        _instrumentor("opentelemetry.instrumentation.httpx", "HTTPXClientInstrumentor"),
    ),
    "urllib3": (
        "urllib3",
        _instrumentor("opentelemetry.instrumentation.urllib3", "URLLib3Instrumentor"),
    ),
    "grpc-client": (
        "grpc",
        _instrumentor("opentelemetry.instrumentation.grpc", "GrpcInstrumentorClient"),
    ),
    "grpc-server": (
        "grpc",
        _instrumentor("opentelemetry.instrumentation.grpc", "GrpcInstrumentorServer"),
    ),
    "grpc-aio-client": (
        "grpc",
        _instrumentor("opentelemetry.instrumentation.grpc", "GrpcAioInstrumentorClient"),
    ),
    "grpc-aio-call-sites": ("grpc", _after_import("grpc.aio._channel", _patch_grpc_aio_calls)),
    "grpc-aio-server": (
        "grpc",
        _instrumentor("opentelemetry.instrumentation.grpc", "GrpcAioInstrumentorServer"),
    ),
    "wsgiref": ("wsgiref", _instrument_wsgiref),
    "uvicorn": ("uvicorn", _after_import("uvicorn.config", _patch_uvicorn)),
    "hypercorn": ("hypercorn", _after_import("hypercorn.utils", _patch_hypercorn)),
}
"""Instrumentation name → (library that must be importable, installer)."""


def instrument_libraries() -> list[str]:
    """Install every instrumentation whose library is present; returns their names."""
    installed = []
    for name, (library, install) in _INSTRUMENTATIONS.items():
        if importlib.util.find_spec(library) is None:
            continue
        try:
            install()
        except Exception:  # a broken optional instrumentation must not stop the service
            _log.warning("memlens: could not instrument %s", name, exc_info=True)
            continue
        installed.append(name)
    return installed


def _flush_on_sigterm(providers: list[TracerProvider | MeterProvider]) -> None:
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return  # the service handles SIGTERM itself; atexit still flushes

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        for provider in providers:
            provider.shutdown()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)  # die by the signal, as without memlens

    signal.signal(signal.SIGTERM, on_sigterm)


def bootstrap() -> TracerProvider:
    """Configure tracing in this process (idempotent per process) and return the provider."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    set_global_textmap(propagator_from_env())
    service = os.environ.get("OTEL_SERVICE_NAME") or Path(sys.argv[0] or "python").stem
    attributes: dict[str, str | int] = {"service.name": service, "process.pid": os.getpid()}
    script = entry_point()
    if script is not None:
        attributes[ENTRY_POINT] = script
    resource = Resource.create(attributes)
    sample_memory = os.environ.get("MEMLENS_MEMORY", "1") != "0"
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(CodeLocationSpanProcessor(sample_memory=sample_memory))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    providers: list[TracerProvider | MeterProvider] = [provider]
    if sample_memory:
        providers.append(start_memory_metrics(resource, interval_from_env()))
    instrument_libraries()
    if threading.current_thread() is threading.main_thread():
        _flush_on_sigterm(providers)
    return provider
