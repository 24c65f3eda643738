"""The ASGI servers uvicorn and hypercorn: the app they serve is wrapped in OpenTelemetry's
middleware. (ASGI has no global server registry: an app served some other way needs
OpenTelemetry's ASGI middleware in its own code.)"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ["patch_hypercorn", "patch_uvicorn"]


def patch_uvicorn(config_module: ModuleType) -> None:
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


def patch_hypercorn(utils: ModuleType) -> None:
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
