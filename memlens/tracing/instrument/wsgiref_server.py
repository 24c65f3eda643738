"""``wsgiref.simple_server``: every app it serves is wrapped in OpenTelemetry's WSGI
middleware."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["instrument_wsgiref"]


def instrument_wsgiref() -> None:
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
