"""The instrumentations ``memlens run`` installs, by name: OpenTelemetry's instrumentors of
requests, httpx, urllib3 and gRPC (sync and ``grpc.aio``), and memlens's own patches of
``wsgiref``, uvicorn, hypercorn and ``grpc.aio`` call sites.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable
from types import ModuleType

from memlens.tracing.instrument.asgi_servers import patch_hypercorn, patch_uvicorn
from memlens.tracing.instrument.grpc_aio import patch_grpc_aio_calls
from memlens.tracing.instrument.wsgiref_server import instrument_wsgiref

__all__ = ["instrument_libraries"]

_log = logging.getLogger(__name__)


def _after_import(module: str, patch: Callable[[ModuleType], None]) -> Callable[[], None]:
    """An installer that patches ``module`` once it is imported (now, if it already is):
    servers are not imported into every traced process just to be instrumented."""

    def install() -> None:
        import wrapt

        wrapt.register_post_import_hook(patch, module)

    return install


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
    "grpc-aio-call-sites": ("grpc", _after_import("grpc.aio._channel", patch_grpc_aio_calls)),
    "grpc-aio-server": (
        "grpc",
        _instrumentor("opentelemetry.instrumentation.grpc", "GrpcAioInstrumentorServer"),
    ),
    "wsgiref": ("wsgiref", instrument_wsgiref),
    "uvicorn": ("uvicorn", _after_import("uvicorn.config", patch_uvicorn)),
    "hypercorn": ("hypercorn", _after_import("hypercorn.utils", patch_hypercorn)),
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
