"""``memlens/documentView``: the memory view of one document's estimated model loads (what
the status bar's click shows when no Profile or Compress ran yet).

Params ``{"uri"}``; result: the ``memlens/memoryReport`` payload of an estimate report
holding every load's estimate (the worker's exact one when it sent it), or null when the
document has no estimated load.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from memlens.errors import UsageError

if TYPE_CHECKING:
    from memlens.lsp_server.server import MemlensServer

DOCUMENT_VIEW_REQUEST = "memlens/documentView"


def document_view(ls: MemlensServer, uri: str) -> dict[str, Any] | None:
    """The view of an open document's loads; UsageError when it is not open."""
    from memlens.lsp_server.memory_view import build_memory_view  # not needed to start

    if uri not in ls.workspace.text_documents:
        raise UsageError(f"{uri} is not open")
    estimates = [
        e.to_json()
        for load in ls.analysis(uri).loads
        if (e := ls.load_estimate(uri, load).estimate) is not None
    ]
    if not estimates:
        return None
    name = PurePosixPath(uri).name
    report = {"kind": "estimate", "model": name, "estimates": estimates}
    return build_memory_view(report, ls.settings.budget_bytes).to_json()


def register(server: MemlensServer) -> None:
    """The ``memlens/documentView`` request."""

    @server.feature(DOCUMENT_VIEW_REQUEST)
    def view(ls: MemlensServer, params: Any) -> dict[str, Any] | None:
        uri = params.get("uri") if isinstance(params, dict) else getattr(params, "uri", None)
        if not isinstance(uri, str):
            raise UsageError('params must be {"uri": "<document uri>"}')
        return document_view(ls, uri)
