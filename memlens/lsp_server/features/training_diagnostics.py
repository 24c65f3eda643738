"""Diagnostics of training sites, one checker per code:

- ``train-over-budget``: the step's peak (a Trainer's, a hand loop's ``backward()``)
  exceeds the memory budget, naming the first change that fits, tried in order: gradient
  checkpointing, bf16 mixed precision, an 8-bit optimizer, LoRA, QLoRA (each one a quick
  fix, see ``training_fixes``);
- ``train-config``: the script's configuration cannot train this model (a LoRA rank of 0,
  a target that matches no module, an unknown ``optim=``, a batch of 0).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from memlens.lsp_server.analysis import TrainingChange, TrainingSite
from memlens.lsp_server.features.diagnostics import Problem
from memlens.lsp_server.features.training_estimates import (
    TrainingResult,
    estimate_training,
    site_estimate,
)
from memlens.units import format_bytes

if TYPE_CHECKING:
    from memlens.lsp_server.server import MemlensServer

OVER_BUDGET = "train-over-budget"
BAD_CONFIG = "train-config"


def change_estimate(
    ls: MemlensServer, uri: str, site: TrainingSite, change: TrainingChange
) -> TrainingResult:
    """The estimate of the code as ``change`` edits it."""
    load = change.load or site.load
    assert load is not None
    return estimate_training(ls, uri, load, change.config, site.sharding)


def first_fit(
    ls: MemlensServer, uri: str, site: TrainingSite, budget: int
) -> tuple[TrainingChange, int] | None:
    """The first of the site's changes whose edited code's peak fits ``budget``."""
    for change in site.changes:
        estimate = change_estimate(ls, uri, site, change).estimate
        if estimate is not None and estimate.peak_bytes <= budget:
            return change, estimate.peak_bytes
    return None


def _over_budget(ls: MemlensServer, uri: str, site: TrainingSite) -> Problem | None:
    result = site_estimate(ls, uri, site)
    budget = ls.settings.budget_bytes
    if not site.reports_peak or result is None or result.estimate is None:
        return None
    estimate = result.estimate
    if estimate.peak_bytes <= budget:
        return None
    fit = first_fit(ls, uri, site, budget)
    advice = (
        f"; with {fit[0].name} it would need {format_bytes(fit[1])} and fit"
        if fit
        else "; no single change memlens knows (gradient checkpointing, bf16, an 8-bit "
        "optimizer, LoRA, QLoRA) makes it fit"
    )
    return Problem(
        f"training step of {estimate.model} ({estimate.config.describe()}) peaks at "
        f"{format_bytes(estimate.peak_bytes)} (weights {format_bytes(estimate.weight_bytes)}, "
        f"gradients {format_bytes(estimate.gradient_bytes)}, optimizer states "
        f"{format_bytes(estimate.optimizer_bytes)}, activations "
        f"{format_bytes(estimate.activation_bytes)}), over the {format_bytes(budget)} "
        f"memory budget{advice}",
        types.DiagnosticSeverity.Warning,
        {"fits": fit[0].name if fit else None},
    )


def _bad_config(ls: MemlensServer, uri: str, site: TrainingSite) -> Problem | None:
    result = site_estimate(ls, uri, site)
    message = site.problem or (result.error if result is not None and result.invalid else None)
    if message is None:
        return None
    return Problem(
        f"memlens cannot size this training step: {message}", types.DiagnosticSeverity.Warning
    )


_CHECKS = {OVER_BUDGET: _over_budget, BAD_CONFIG: _bad_config}


def _training_diagnostics(ls: MemlensServer, uri: str) -> list[types.Diagnostic]:
    """Each site's diagnostics; one configuration problem is reported once, at its first
    site (a bad LoraConfig reaches its wrap, the optimizer and the Trainer alike)."""
    found: list[types.Diagnostic] = []
    reported: set[str] = set()
    for site in ls.analysis(uri).training:
        for code, check in _CHECKS.items():
            problem = check(ls, uri, site)
            if problem is None or (code == BAD_CONFIG and problem.message in reported):
                continue
            reported.add(problem.message)
            found.append(problem.diagnostic(ls.to_lsp_range(uri, site.span), code))
    return found


def register(server: MemlensServer) -> None:
    """The training sites' diagnostics, answered with the loads' (``diagnostics``)."""
    server.diagnostics_providers.append(_training_diagnostics)
