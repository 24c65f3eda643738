"""``memlens/documentSummary``: one document's total for the editor's status bar.

Params ``{"uri"}``; result ``{"models", "estimated", "weight_bytes", "label",
"budget_bytes", "budget_label", "over_budget", "over_budget_models"}``. ``models`` counts
the loads and the calls that build a module class of the file; ``weight_bytes`` sums those
the server could estimate (``estimated`` of them): a load's weights at its dtype, a build's
parameters and buffers; without either, the largest ``nn.Module`` class's total. ``label``
says so (``weights ≈ 26.0 GiB · 2 models``, ``weights Σ 344.0 MiB``) and is null when
nothing in the document has an estimate. ``over_budget_models`` counts the models whose
figure the over-budget diagnostic checks (a load's serving total, a build's parameters and
buffers) exceeds the budget; without models, ``over_budget`` compares the class's weights
with it. ``budget_label`` is the budget as the status bar shows it.
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
    budget = ls.settings.budget_bytes
    # per load or build: (its weights, the figure the over-budget diagnostic checks)
    figures = [
        *(
            (e.weight_bytes, e.total_bytes)
            for ld in analysis.loads
            if (e := ls.load_estimate(uri, ld).estimate)
        ),
        *((build.size.bytes, build.size.bytes) for build in analysis.builds),
    ]
    label: str | None
    if figures:
        total = sum(weights for weights, _ in figures)
        label = weights_label(total) + (f" · {len(figures)} models" if len(figures) > 1 else "")
        over = sum(checked > budget for _, checked in figures)
    else:
        totals = [t for t in class_totals(analysis.classes).values() if t.bytes]
        total = max((t.bytes for t in totals), default=0)
        label = f"weights Σ {format_bytes(total)}" if totals else None
        over = int(total > budget)
    return {
        "models": len(analysis.loads) + len(analysis.builds),
        "estimated": len(figures),
        "weight_bytes": total,
        "label": label,
        "budget_bytes": budget,
        "budget_label": format_bytes(budget),
        "over_budget": over > 0,
        "over_budget_models": over if figures else 0,
    }


def register(server: MemlensServer) -> None:
    """The ``memlens/documentSummary`` request."""

    @server.feature(SUMMARY_REQUEST)
    def summary(ls: MemlensServer, params: Any) -> dict[str, Any]:
        uri = params.get("uri") if isinstance(params, dict) else getattr(params, "uri", None)
        if not isinstance(uri, str):
            raise UsageError('params must be {"uri": "<document uri>"}')
        return document_summary(ls, uri)
