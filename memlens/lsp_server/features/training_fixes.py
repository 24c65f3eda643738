"""Quick fixes of a training site: gradient checkpointing, bf16 mixed precision, an 8-bit
optimizer, LoRA, QLoRA, each titled with the step's peak the edited code reaches (the
estimate of the configuration the analysis finds in the edited text)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from memlens.lsp_server.analysis import Position, Span, TrainingChange, TrainingSite
from memlens.lsp_server.features.training_diagnostics import (
    OVER_BUDGET,
    change_estimate,
    first_fit,
)
from memlens.units import format_bytes

if TYPE_CHECKING:
    from memlens.lsp_server.server import MemlensServer

_TITLES = {
    "gradient checkpointing": "enable gradient checkpointing",
    "bf16 mixed precision": "train in bf16 mixed precision",
    "8-bit optimizer": "use an 8-bit AdamW",
    "LoRA": "train LoRA adapters (r=16)",
    "QLoRA": "train QLoRA adapters (r=16) on a 4-bit base",
}


def change_edits(ls: MemlensServer, uri: str, change: TrainingChange) -> list[types.TextEdit]:
    """The change's edits in the client's positions, with its import lines."""
    at = ls.to_lsp(uri, Position(ls.analysis(uri).import_line, 0))
    imports = "".join(f"{line}\n" for line in change.imports)
    edits = [types.TextEdit(range=types.Range(at, at), new_text=imports)] if imports else []
    return edits + [
        types.TextEdit(range=ls.to_lsp_range(uri, edit.span), new_text=edit.text)
        for edit in change.edits
    ]


def training_actions(
    ls: MemlensServer, uri: str, wanted: Span, diagnostics: list[types.Diagnostic]
) -> list[types.CodeAction]:
    """The quick fixes of the peak sites ``wanted`` touches."""
    related = [d for d in diagnostics if d.code == OVER_BUDGET]
    actions: list[types.CodeAction] = []
    for site in ls.analysis(uri).training:
        if site.reports_peak and site.span.start <= wanted.end and wanted.start <= site.span.end:
            actions.extend(_site_actions(ls, uri, site, related))
    return actions


def _site_actions(
    ls: MemlensServer, uri: str, site: TrainingSite, related: list[types.Diagnostic]
) -> list[types.CodeAction]:
    fit = first_fit(ls, uri, site, ls.settings.budget_bytes)
    actions = []
    for change in site.changes:
        estimate = change_estimate(ls, uri, site, change).estimate
        if estimate is None:
            continue
        actions.append(
            types.CodeAction(
                title=(
                    f"memlens: {_TITLES[change.name]} "
                    f"(train step ≈ {format_bytes(estimate.peak_bytes)})"
                ),
                kind=types.CodeActionKind.QuickFix,
                diagnostics=related or None,
                is_preferred=bool(related) and fit is not None and fit[0] is change,
                edit=types.WorkspaceEdit(changes={uri: change_edits(ls, uri, change)}),
            )
        )
    return actions
