"""``memlens/documentSummary``: one document's total for the editor's status bar.

Params ``{"uri"}``; result ``{"loads", "estimated", "weight_bytes", "label",
"budget_bytes", "budget_label", "over_budget"}``. ``weight_bytes`` sums the model loads
the server could estimate (their weights at the load's dtype) and the calls that build a
module class of the file (their parameters and buffers); without either, the largest
``nn.Module`` class's total. ``estimated`` counts the loads and builds summed. ``label``
is null when nothing in the document has an estimate; ``budget_label`` is the budget as
the status bar shows it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memlens.errors import UsageError
from memlens.lsp_server.analysis import class_totals
from memlens.units import format_bytes

if TYPE_CHECKING:
    from memlens.lsp_server.server import MemlensServer

SUMMARY_REQUEST = "memlens/documentSummary"


def document_summary(ls: MemlensServer, uri: str) -> dict[str, Any]:
    """The summary of an open document; UsageError when it is not open."""
    if uri not in ls.workspace.text_documents:
        raise UsageError(f"{uri} is not open")
    analysis = ls.analysis(uri)
    estimates = [
        *(e.weight_bytes for ld in analysis.loads if (e := ls.load_estimate(uri, ld).estimate)),
        *(build.size.bytes for build in analysis.builds),
    ]
    label: str | None
    if estimates:
        total = sum(estimates)
        label = f"≈ {format_bytes(total)}" + (
            f" · {len(estimates)} models" if len(estimates) > 1 else ""
        )
    else:
        totals = [t for t in class_totals(analysis.classes).values() if t.bytes]
        total = max((t.bytes for t in totals), default=0)
        label = f"Σ {format_bytes(total)}" if totals else None
    budget = ls.settings.budget_bytes
    return {
        "loads": len(analysis.loads),
        "estimated": len(estimates),
        "weight_bytes": total,
        "label": label,
        "budget_bytes": budget,
        "budget_label": format_bytes(budget),
        "over_budget": total > budget,
    }


def register(server: MemlensServer) -> None:
    """The ``memlens/documentSummary`` request."""

    @server.feature(SUMMARY_REQUEST)
    def summary(ls: MemlensServer, params: Any) -> dict[str, Any]:
        uri = params.get("uri") if isinstance(params, dict) else getattr(params, "uri", None)
        if not isinstance(uri, str):
            raise UsageError('params must be {"uri": "<document uri>"}')
        return document_summary(ls, uri)
