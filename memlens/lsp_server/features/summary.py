"""``memlens/documentSummary``: one document's total for the editor's status bar.

Params ``{"uri"}``; result ``{"loads", "estimated", "weight_bytes", "label",
"budget_bytes", "budget_label", "over_budget", "over_budget_loads"}``. ``weight_bytes``
sums the model loads the server could estimate (their weights at the load's dtype);
without loads, the largest ``nn.Module`` class's total. ``label`` says so
(``weights ≈ 26.0 GiB · 2 models``, ``weights Σ 344.0 MiB``) and is null when nothing in
the document has an estimate. ``over_budget_loads`` counts the loads whose serving total
(the over-budget diagnostic's figure) exceeds the budget; without loads, ``over_budget``
compares the class's weights with it. ``budget_label`` is the budget as the status bar
shows it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memlens.errors import UsageError
from memlens.lsp_server.analysis import class_totals
from memlens.lsp_server.features.labels import weights_label
from memlens.units import format_bytes

if TYPE_CHECKING:
    from memlens.lsp_server.server import MemlensServer

SUMMARY_REQUEST = "memlens/documentSummary"


def document_summary(ls: MemlensServer, uri: str) -> dict[str, Any]:
    """The summary of an open document; UsageError when it is not open."""
    if uri not in ls.workspace.text_documents:
        raise UsageError(f"{uri} is not open")
    analysis = ls.analysis(uri)
    estimates = [e for ld in analysis.loads if (e := ls.load_estimate(uri, ld).estimate)]
    budget = ls.settings.budget_bytes
    label: str | None
    if estimates:
        total = sum(e.weight_bytes for e in estimates)
        label = weights_label(total) + (f" · {len(estimates)} models" if len(estimates) > 1 else "")
        over = sum(e.total_bytes > budget for e in estimates)
    else:
        totals = [t for t in class_totals(analysis.classes).values() if t.bytes]
        total = max((t.bytes for t in totals), default=0)
        label = f"weights Σ {format_bytes(total)}" if totals else None
        over = int(total > budget)
    return {
        "loads": len(analysis.loads),
        "estimated": len(estimates),
        "weight_bytes": total,
        "label": label,
        "budget_bytes": budget,
        "budget_label": format_bytes(budget),
        "over_budget": over > 0,
        "over_budget_loads": over if estimates else 0,
    }


def register(server: MemlensServer) -> None:
    """The ``memlens/documentSummary`` request."""

    @server.feature(SUMMARY_REQUEST)
    def summary(ls: MemlensServer, params: Any) -> dict[str, Any]:
        uri = params.get("uri") if isinstance(params, dict) else getattr(params, "uri", None)
        if not isinstance(uri, str):
            raise UsageError('params must be {"uri": "<document uri>"}')
        return document_summary(ls, uri)
