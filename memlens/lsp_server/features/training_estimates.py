"""Training sites → the profiler's analytic training estimates (computed once per
document version), and the short texts their hints show."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from memlens.errors import MemlensError
from memlens.lsp_server.analysis import ModelLoad, TrainingSite
from memlens.lsp_server.features.labels import Hint
from memlens.profiler.training import TrainingEstimate, training_estimate
from memlens.profiler.training_config import Sharding, TrainingConfig
from memlens.units import format_bytes

if TYPE_CHECKING:
    from memlens.lsp_server.server import MemlensServer


@dataclass(frozen=True)
class TrainingResult:
    """The estimate of one configuration of one load, or why there is none."""

    estimate: TrainingEstimate | None
    error: str | None = None
    invalid: bool = False
    """True when the script's configuration is wrong for this model (a LoRA target that
    matches no module), not merely unknown."""


def estimate_training(
    ls: MemlensServer, uri: str, load: ModelLoad, config: TrainingConfig, sharding: Sharding
) -> TrainingResult:
    """The training estimate of ``load`` trained as ``config`` (memoized per version),
    per device under ``sharding`` when ``memlens.training.devices`` is more than 1."""
    devices = ls.settings.training_devices
    if devices > 1:
        config = replace(config, devices=devices, sharding=sharding)
    cache: dict[tuple[object, ...], TrainingResult] = ls.version_results(uri).get(
        "training estimates", dict
    )
    key = (load.model_ref, repr(load.config), load.span, config)
    if key not in cache:
        try:
            model_config, model = ls.estimator.model_config(load, ls.document_dir(uri))
        except MemlensError as exc:
            cache[key] = TrainingResult(None, str(exc))
        else:
            try:
                cache[key] = TrainingResult(training_estimate(model_config, model, config))
            except MemlensError as exc:
                cache[key] = TrainingResult(None, str(exc), invalid=True)
    return cache[key]


def site_estimate(ls: MemlensServer, uri: str, site: TrainingSite) -> TrainingResult | None:
    """The estimate of the site's configuration; None when the script does not state one."""
    if site.load is None or site.config is None:
        return None
    return estimate_training(ls, uri, site.load, site.config, site.sharding)


def peak_label(estimate: TrainingEstimate) -> str:
    """``train step ≈ 95.3 GiB · batch 4 × 512`` (the rest of the configuration is in
    :func:`site_tooltip`)."""
    config = estimate.config
    return f"train step ≈ {format_bytes(estimate.peak_bytes)} · batch {config.batch} × {config.seq}"


def trainable_label(estimate: TrainingEstimate) -> str:
    """``trainable 4,194,304 (0.06%) · 16.0 MiB``: the trainable parameters, their share
    of all and the adapters' bytes (peft's own line is in :func:`site_tooltip`)."""
    return (
        f"trainable {estimate.trainable_params:,} ({_trainable_share(estimate):.2f}%) · "
        f"{format_bytes(estimate.adapter_bytes)}"
    )


def _trainable_share(estimate: TrainingEstimate) -> float:
    total = estimate.params + estimate.adapter_params
    return 100 * estimate.trainable_params / total if total else 0.0


def optimizer_label(estimate: TrainingEstimate) -> str:
    """``adamw states ≈ 50.2 GiB`` (for the parameters that train)."""
    return f"{estimate.config.optimizer} states ≈ {format_bytes(estimate.optimizer_bytes)}"


def site_tooltip(estimate: TrainingEstimate) -> str:
    """The configuration the hint's figure is for and what peft's
    ``print_trainable_parameters()`` would print for it."""
    total = estimate.params + estimate.adapter_params
    return (
        f"{estimate.model}: {estimate.config.describe()}\n"
        f"trainable params: {estimate.trainable_params:,} || all params: {total:,} || "
        f"trainable%: {_trainable_share(estimate):.4f}"
    )


SITE_LABELS: dict[str, Callable[[TrainingEstimate], str]] = {
    "trainer": peak_label,
    "backward": peak_label,
    "lora": trainable_label,
    "optimizer": optimizer_label,
}
"""The hint each kind of site shows."""


def training_hint_texts(ls: MemlensServer, uri: str) -> list[Hint]:
    """Every training site's hint."""
    hints: list[Hint] = []
    for site in ls.analysis(uri).training:
        result = site_estimate(ls, uri, site)
        if result is not None and result.estimate is not None:
            estimate = result.estimate
            label = SITE_LABELS[site.kind](estimate)
            hints.append(Hint(site.span.end, label, site_tooltip(estimate)))
    return hints
