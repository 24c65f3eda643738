"""The worker's JSON-lines protocol.

Request ``{"id", "method", "params"}``; replies ``{"id", "progress": {...}}`` any number
of times, then ``{"id", "result": ...}`` or ``{"id", "error": {"kind", "message"}}``.
``{"method": "$/cancel", "params": {"id": N}}`` cancels request N at its next check.
Requests run on a small thread pool, so a cancel or a cheap request is answered while a
long one runs.
"""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TextIO

from memlens.errors import MemlensError
from memlens.worker import tasks  # noqa: F401  (importing it registers the methods)
from memlens.worker.methods import Handler, RequestContext, handler_for

log = logging.getLogger(__name__)


def _error(exc: BaseException) -> dict[str, str]:
    if isinstance(exc, MemlensError):
        return {"kind": type(exc).__name__, "message": str(exc)}
    log.exception("worker request failed")
    return {"kind": "InternalError", "message": f"{type(exc).__name__}: {exc}"}


def serve(stdin: TextIO, stdout: TextIO, workers: int = 2) -> int:
    """Answer requests until stdin closes; returns the exit code."""
    lock = threading.Lock()
    contexts: dict[Any, RequestContext] = {}

    def write(message: dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":"))
        with lock:
            stdout.write(line + "\n")
            stdout.flush()

    def run(handler: Handler, params: dict[str, Any], context: RequestContext) -> None:
        try:
            result = handler(params, context)
            write({"id": context.request_id, "result": result})
        except BaseException as exc:
            write({"id": context.request_id, "error": _error(exc)})
        finally:
            contexts.pop(context.request_id, None)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="memlens-worker") as pool:
        for line in stdin:
            if not line.strip():
                continue
            request_id, name, params = _parse(line)
            if name is None or params is None or (request_id is None and name != "$/cancel"):
                write(
                    {
                        "id": request_id,
                        "error": {
                            "kind": "ParseError",
                            "message": 'expected {"id", "method", "params"}',
                        },
                    }
                )
                continue
            if name == "$/cancel":
                if (target := contexts.get(params.get("id"))) is not None:
                    target.cancelled.set()
                continue
            handler = handler_for(name)
            if handler is None:
                write(
                    {
                        "id": request_id,
                        "error": {"kind": "MethodNotFound", "message": f"unknown method {name!r}"},
                    }
                )
                continue
            context = RequestContext(request_id, write)
            contexts[request_id] = context
            pool.submit(run, handler, params, context)
        for context in list(contexts.values()):
            context.cancelled.set()
    return 0


def _parse(line: str) -> tuple[Any, str | None, dict[str, Any] | None]:
    """(id, method, params) of a request line; method or params None when malformed."""
    try:
        request = json.loads(line)
    except ValueError:
        return None, None, None
    if not isinstance(request, dict):
        return None, None, None
    request_id = request.get("id")
    if not isinstance(request_id, int | str) or isinstance(request_id, bool):
        request_id = None
    name = request.get("method")
    params = request.get("params") or {}
    if not isinstance(name, str) or not isinstance(params, dict):
        return request_id, None, None
    return request_id, name, params
