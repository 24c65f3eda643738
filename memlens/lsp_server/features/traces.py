"""Tracing in the editor: the ``memlens.traces`` command (arguments ``[{"trace_id"?}]``)
answers with the ``memlens/traceReport`` payload and sends it as that notification; once
the client asked, new spans push a fresh report for the same trace. The collector starts
and polling begins when the settings turn tracing on (see ``trace_watch``)."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from typing import Any

from lsprotocol import types

from memlens.errors import MemlensError, UsageError
from memlens.lsp_server.server import (  # pygls resolves command annotations
    MemlensServer,
    TraceViewRequest,
)
from memlens.tracing.trace_view import empty_trace_report, trace_report

__all__ = ["TRACES_COMMAND", "TRACE_NOTIFICATION", "push_trace_report", "register"]

log = logging.getLogger(__name__)

TRACES_COMMAND = "memlens.traces"
TRACE_NOTIFICATION = "memlens/traceReport"
_TRACE_ID = re.compile(r"[0-9a-f]{32}")


def _trace_id(arguments: tuple[Any, ...]) -> str | None:
    if not arguments:
        return None
    if len(arguments) == 1 and isinstance(arguments[0], dict):
        trace_id = arguments[0].get("trace_id")
        if trace_id is None:
            return None
        if isinstance(trace_id, str) and _TRACE_ID.fullmatch(trace_id.lower()):
            return trace_id.lower()
        raise UsageError(f"trace_id {trace_id!r} is not 32 hex digits")
    raise UsageError('arguments must be [] or [{"trace_id": "<32 hex digits>"}]')


def _report(ls: MemlensServer, trace_id: str | None) -> dict[str, Any]:
    store = ls.traces.report_store()
    if store is None:
        return empty_trace_report()
    with store:
        return trace_report(store, trace_id, jaeger_url=ls.settings.jaeger_url)


async def send_trace_report(ls: MemlensServer, trace_id: str | None) -> dict[str, Any]:
    """Build the report off the event loop and notify the client."""
    report = await asyncio.to_thread(_report, ls, trace_id)
    ls.protocol.notify(TRACE_NOTIFICATION, report)
    return report


async def push_trace_report(ls: MemlensServer, trace_id: str | None) -> None:
    """:func:`send_trace_report` after new spans, which nobody awaits: a store that cannot
    be read just now is logged, and the next change tries again."""
    try:
        await send_trace_report(ls, trace_id)
    except (MemlensError, sqlite3.Error) as exc:
        log.warning("cannot refresh the trace view: %s", exc)


def _refresh_trace_view(ls: MemlensServer) -> None:
    if ls.trace_view is not None:
        ls.run_in_background(push_trace_report(ls, ls.trace_view.trace_id))


def register(server: MemlensServer) -> None:
    """``memlens.traces``, the trace view's refresh after new spans, and the start/stop of
    tracing with the settings."""
    server.on_traces_changed.append(_refresh_trace_view)

    @server.command(TRACES_COMMAND)
    async def traces(ls: MemlensServer, *args: Any) -> dict[str, Any]:
        if not ls.settings.trusted:
            raise UsageError("this workspace is not trusted: memlens reads no traces here")
        trace_id = _trace_id(args)
        ls.trace_view = TraceViewRequest(trace_id)
        return await send_trace_report(ls, trace_id)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: MemlensServer, params: types.InitializedParams) -> None:
        await ls.configure_tracing()
