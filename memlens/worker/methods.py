"""The worker's methods: the registry task modules add themselves to, and the context a
handler gets besides its params."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from memlens.errors import MemlensError

Handler = Callable[[dict[str, Any], "RequestContext"], Any]
_METHODS: dict[str, Handler] = {}


class Cancelled(MemlensError):
    """The client cancelled the request."""


def method(name: str) -> Callable[[Handler], Handler]:
    """Register a worker method (each task module registers its own)."""

    def add(handler: Handler) -> Handler:
        _METHODS[name] = handler
        return handler

    return add


@dataclass
class RequestContext:
    """What a handler can do besides returning: report progress, notice cancellation."""

    request_id: Any
    write: Callable[[dict[str, Any]], None]
    cancelled: threading.Event = field(default_factory=threading.Event)

    def progress(self, message: str, percentage: int | None = None) -> None:
        """Send a progress line; raises Cancelled if the request was cancelled."""
        self.check()
        payload: dict[str, Any] = {"message": message}
        if percentage is not None:
            payload["percentage"] = max(0, min(100, percentage))
        self.write({"id": self.request_id, "progress": payload})

    def check(self) -> None:
        """Raise Cancelled when the client has cancelled this request."""
        if self.cancelled.is_set():
            raise Cancelled(f"request {self.request_id} was cancelled")


def handler_for(name: str) -> Handler | None:
    """The handler registered for method ``name``, if any."""
    return _METHODS.get(name)
