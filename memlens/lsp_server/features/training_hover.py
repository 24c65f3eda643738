"""Hover on a training site: the per-block training table (weights, gradients, optimizer
states, master weights, saved activations, adapters) and the step's peak."""

from __future__ import annotations

from typing import TYPE_CHECKING

from memlens.lsp_server.analysis import Position
from memlens.lsp_server.features.training_estimates import site_estimate
from memlens.profiler.layer_groups import group_training_blocks
from memlens.profiler.training import TrainingEstimate
from memlens.units import format_bytes, format_count

if TYPE_CHECKING:
    from memlens.lsp_server.analysis import Span
    from memlens.lsp_server.server import MemlensServer

_COLUMNS = ("weights", "gradients", "optimizer", "master", "activations", "adapters")


def _escape(text: str) -> str:
    return "".join("\\" + c if c in "\\`*_[]<>|" else c for c in text)


def training_markdown(estimate: TrainingEstimate, budget: int, assumed: tuple[str, ...]) -> str:
    """The table per block (identical layers collapsed) and the step's totals."""
    lines = [
        f"**{_escape(estimate.model)}** · training {_escape(estimate.config.describe())} · "
        f"trainable {format_count(estimate.trainable_params)} of "
        f"{format_count(estimate.params)} ({estimate.source})",
        "",
        "| block | " + " | ".join(_COLUMNS) + " |",
        "|---|" + "---:|" * len(_COLUMNS),
    ]
    for label, count, block in group_training_blocks(estimate.blocks):
        sizes = (
            block.weight_bytes,
            block.gradient_bytes,
            block.optimizer_bytes,
            block.master_bytes,
            block.activation_bytes,
            block.adapter_bytes,
        )
        name = label + (f" ×{count}" if count > 1 else "")
        lines.append(
            f"| {_escape(name)} | " + " | ".join(format_bytes(s * count) for s in sizes) + " |"
        )
    totals = (
        estimate.weight_bytes,
        estimate.gradient_bytes,
        estimate.optimizer_bytes,
        estimate.master_bytes,
        estimate.activation_bytes,
        estimate.adapter_bytes,
    )
    lines.append("| **total** | " + " | ".join(format_bytes(s) for s in totals) + " |")
    fits = "fits" if estimate.peak_bytes <= budget else "does **not** fit"
    lines += [
        "",
        f"Step peak: {format_bytes(estimate.peak_bytes)} (at the {estimate.peak_phase}), "
        f"which {fits} the {format_bytes(budget)} budget.",
    ]
    lines += [f"> assumed: {_escape(a)}" for a in assumed]
    lines += [f"> {_escape(note)}" for note in estimate.notes]
    return "\n".join(lines)


def training_hover(ls: MemlensServer, uri: str, position: Position) -> tuple[str, Span] | None:
    """The hover text and range of the training site under ``position``, if any."""
    for site in ls.analysis(uri).training:
        if not site.span.contains(position):
            continue
        result = site_estimate(ls, uri, site)
        if result is not None and result.estimate is not None:
            markdown = training_markdown(result.estimate, ls.settings.budget_bytes, site.assumed)
            return markdown, site.span
        reason = site.problem or (result.error if result else None)
        if reason:
            return f"memlens: no training estimate: {_escape(reason)}", site.span
    return None
