"""Where a span was made: :class:`CodeLocationSpanProcessor` puts ``code.file.path``,
``code.line.number`` and ``code.function.name`` on spans (the user line that made a client
or internal span, the handler of a server span) and a ``memlens.memory`` event (RSS, and
CUDA allocator bytes when torch is already loaded) on server spans. User code is the
service's own: not the stdlib, not an installed package, not memlens.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import threading
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanKind

__all__ = ["CodeLocationSpanProcessor", "is_user_code", "remembering_call_site"]

_LIBRARY_DIRS = tuple(
    {
        # with the separator: /srv/memlens_app is not inside /srv/memlens
        os.path.join(Path(p).resolve(), "")
        for key in ("stdlib", "platstdlib", "purelib", "platlib")
        if (p := sysconfig.get_paths().get(key))
    }
    | {os.path.join(Path(__file__).resolve().parents[2], "")}  # memlens itself
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


def remembering_call_site(call: Callable[..., Any]) -> Callable[..., Any]:
    """``call``, remembering the user line that calls it for spans that start in a task the
    library creates (marked ``_memlens``, so that a patch can tell it is installed)."""

    def remembered(*args: Any, **kwargs: Any) -> Any:
        token = _CALL_SITE.set(_innermost_user_frame(sys._getframe(1)))
        try:
            return call(*args, **kwargs)
        finally:
            _CALL_SITE.reset(token)

    remembered._memlens = True  # type: ignore[attr-defined]
    return remembered


_resolved: dict[str, str] = {}


def _set_location(span: Span, code: Any, line: int) -> None:
    path = _resolved.get(code.co_filename)
    if path is None:  # resolve() costs a few lstat calls: once per file, not per span
        path = _resolved[code.co_filename] = str(Path(code.co_filename).resolve())
    span.set_attribute("code.file.path", path)
    span.set_attribute("code.line.number", line)
    span.set_attribute("code.function.name", code.co_qualname)
