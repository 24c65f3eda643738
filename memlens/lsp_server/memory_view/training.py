"""A training report (``kind`` training-profile, from the worker's ``memlens.profile`` with
a ``"train"`` configuration or ``memlens profile --train --json``) → the memory view.

The totals are bars that add up to the step's peak, so the budget line compares like with
like:

- **Estimate**: the resident model states on one device (weights, LoRA adapters,
  optimizer states, fp32 master weights) and what the estimate's peak phase holds on top
  of them (memlens/profiler/training.py names the phases): every gradient at the end of
  backward and at the optimizer step, the activations saved for backward at the start of
  backward and during the recomputation; the rest of the step's transient bytes are
  temporaries (the loss's logits gradients, the optimizer's temporaries, a recomputed
  layer, a gathered block under ZeRO-3/FSDP).
- **Measured**: the measured weights (adapters included, as the measurement counts them)
  and optimizer states, and what the step held on top of them at its peak.

Per block: a bar of everything the block allocates during a step (weights, adapters,
gradients, optimizer states, master weights, saved activations) and a table row with the
same, the saved activations under the other checkpointing choice, and what the block
holds at the peak's phase. Blocks are unsharded; under sharding the totals are per device.
The measurement counts the whole model, so estimate and measurement are compared in the
figures (the estimate's error relative to the measured value).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from memlens.errors import MalformedReportError, UsageError
from memlens.lsp_server.memory_view import drawing as draw
from memlens.lsp_server.memory_view.drawing import CellFormat, Columns
from memlens.lsp_server.memory_view.payload import (
    Bar,
    CellValue,
    Figure,
    LayerGroup,
    MemoryView,
    Number,
    SegmentKind,
)
from memlens.lsp_server.memory_view.reading import (
    array,
    byte_count,
    field,
    flag,
    record,
    string,
    strings,
)
from memlens.profiler.training_config import Sharding, TrainingConfig, config_from_json
from memlens.units import format_count, format_percent

Sizes = Mapping[str, Number]
"""Bytes (or parameter counts) by the view's name for them."""

_BLOCK_FIELDS = {
    "params": "params",
    "trainable": "trainable_params",
    "weights": "weight_bytes",
    "adapters": "adapter_bytes",
    "gradients": "gradient_bytes",
    "optimizer": "optimizer_bytes",
    "master": "master_bytes",
    "saved": "activation_bytes",
    "savedPlain": "activation_bytes_plain",
    "savedCheckpointed": "activation_bytes_checkpointed",
}
"""A TrainingBlock's fields, by the view's name (also its table column's key)."""
_ESTIMATE_FIELDS = {
    **_BLOCK_FIELDS,
    "states": "model_state_bytes",
    "peak": "peak_bytes",
}
_MEASURED_FIELDS = {
    "params": "params",
    "trainable": "trainable_params",
    "weights": "weight_bytes",
    "gradients": "gradient_bytes",
    "optimizer": "optimizer_bytes",
    "saved": "activation_bytes",
    "peak": "peak_bytes",
}
_RESIDENT: tuple[SegmentKind, ...] = ("weights", "adapters", "optimizer", "master")
"""What stays allocated between steps (the optimizer's states from the first step on)."""
_STATE_KINDS: tuple[SegmentKind, ...] = (*_RESIDENT, "gradients")
_HOLDS: Mapping[str, tuple[bool, bool]] = {
    "backward start": (False, True),
    "recomputation": (False, True),
    "backward end": (True, False),
    "optimizer step": (True, False),
}
"""Per peak phase: whether it holds every gradient, and every saved activation."""

_OPTIONAL_COLUMNS = frozenset({"adapters", "optimizer", "master"})
"""Columns left out when every block's value is 0 (full fine-tuning has no adapters, SGD
no optimizer states, fp32 no master weights)."""


@dataclass(frozen=True)
class _Block:
    name: str
    kind: str
    sizes: Sizes


@dataclass(frozen=True)
class _Fit:
    name: str
    capacity: Number
    fits: bool


@dataclass(frozen=True)
class _Estimate:
    config: TrainingConfig
    sizes: Sizes
    phase: str
    blocks: tuple[_Block, ...]
    fits: tuple[_Fit, ...]
    notes: tuple[str, ...]

    def held(self, sizes: Sizes) -> dict[str, Number]:
        """Of ``sizes`` (a block's or the totals), the gradients and saved activations the
        peak's phase holds."""
        gradients, saved = _HOLDS[self.phase]
        return {
            "gradients": sizes["gradients"] if gradients else 0,
            "saved": sizes["saved"] if saved else 0,
        }


def _sizes(data: Mapping[str, Any], fields: Mapping[str, str], where: str) -> dict[str, Number]:
    return {name: byte_count(data, key, where) for name, key in fields.items()}


def _parse_estimate(value: Any, where: str) -> _Estimate:
    e = record(value, where)
    try:
        config = config_from_json(field(e, "config", where))
    except UsageError as error:
        raise MalformedReportError(f"{where}.config: {error}") from None
    phase = string(e, "peak_phase", where)
    if phase not in _HOLDS:
        raise MalformedReportError(
            f'{where}.peak_phase "{phase}" is not one of {", ".join(_HOLDS)}'
        )
    blocks = []
    for i, raw in enumerate(array(e, "blocks", where)):
        at = f"{where}.blocks[{i}]"
        block = record(raw, at)
        name, kind = string(block, "name", at), string(block, "kind", at)
        blocks.append(_Block(name, kind, _sizes(block, _BLOCK_FIELDS, at)))
    fits = []
    for i, raw in enumerate(array(e, "fits", where) if "fits" in e else []):
        at = f"{where}.fits[{i}]"
        fit = record(raw, at)
        capacity = byte_count(fit, "capacity_bytes", at)
        fits.append(_Fit(string(fit, "name", at), capacity, flag(fit, "fits", at)))
    sizes = _sizes(e, _ESTIMATE_FIELDS, where)
    if sizes["peak"] < sum(sizes[kind] for kind in _RESIDENT):
        raise MalformedReportError(f"{where}.peak_bytes is less than the resident model states")
    return _Estimate(config, sizes, phase, tuple(blocks), tuple(fits), strings(e.get("notes")))


def _bar(label: str, parts: Sequence[tuple[SegmentKind, Number]]) -> Bar:
    """A stacked bar of the parts that are not empty."""
    return draw.bar(label, *(part for part in parts if part[1] > 0))


def _estimate_bar(estimate: _Estimate) -> Bar:
    sizes, held = estimate.sizes, estimate.held(estimate.sizes)
    resident = [(kind, sizes[kind]) for kind in _RESIDENT]
    transient = sizes["peak"] - sum(size for _, size in resident)  # ≥ 0: checked when read
    gradients = min(held["gradients"], transient)
    saved = min(held["saved"], transient - gradients)
    return _bar(
        f"Estimate · peak at {estimate.phase}",
        [
            *resident,
            ("gradients", gradients),
            ("saved", saved),
            ("temporaries", transient - gradients - saved),
        ],
    )


def _measured_bar(measured: Sizes, device: str) -> Bar:
    resident = measured["weights"] + measured["optimizer"]
    if measured["peak"] < resident:
        raise MalformedReportError(
            "report.measured.peak_bytes is less than the measured weights and optimizer states"
        )
    return _bar(
        f"Measured · peak on {device}",
        [
            ("weights", measured["weights"]),
            ("optimizer", measured["optimizer"]),
            ("transient", measured["peak"] - resident),
        ],
    )


def _block_bar(block: _Block) -> Bar:
    kinds: tuple[SegmentKind, ...] = (*_RESIDENT, "gradients", "saved")
    return _bar("estimate", [(kind, block.sizes[kind]) for kind in kinds])


# --- figures ------------------------------------------------------------------------------


def _error(estimated: Number, measured: Number) -> str:
    """The estimate's error relative to the measured value (``+2.10%``; ``exact``)."""
    if estimated == measured:
        return "exact"
    if measured == 0:
        return "measured 0"
    error = (estimated - measured) / measured
    return ("+" if error >= 0 else "-") + format_percent(abs(error))


def _estimate_figures(estimate: _Estimate) -> list[Figure]:
    s, config = estimate.sizes, estimate.config
    share = (
        f" per device ({config.devices} × {config.sharding})"
        if config.sharding is not Sharding.NONE
        else ""
    )
    trainable = f"{format_count(round(s['trainable']))} of {format_count(round(s['params']))}"
    if s["params"] > 0:
        trainable += f" ({format_percent(s['trainable'] / s['params'])})"
    other, other_text = (
        (s["savedPlain"], "without")
        if config.gradient_checkpointing
        else (s["savedCheckpointed"], "with")
    )
    figures = [
        Figure(f"Step peak{share}", f"{draw.size(s['peak'])} at {estimate.phase}"),
        Figure("Trainable parameters", trainable),
        Figure(f"Model states{share}", draw.size(s["states"])),
        Figure(
            "Saved activations",
            f"{draw.size(s['saved'])} ({draw.size(other)} {other_text} gradient checkpointing)",
        ),
    ]
    if share:
        unsharded = sum(b.sizes[kind] for b in estimate.blocks for kind in _STATE_KINDS)
        figures.append(Figure("Model states on one device, unsharded", draw.size(unsharded)))
    figures += [
        Figure(f"{fit.name} ({draw.size(fit.capacity)})", "fits" if fit.fits else "does not fit")
        for fit in estimate.fits
    ]
    return figures


_COMPARED: tuple[tuple[str, str, CellFormat], ...] = (
    ("peak", "Step peak", "bytes"),
    ("weights", "Weights and adapters", "bytes"),
    ("gradients", "Gradients", "bytes"),
    ("optimizer", "Optimizer states", "bytes"),
    ("saved", "Saved activations", "bytes"),
    ("trainable", "Trainable parameters", "count"),
)
"""(key, label, format): what the measurement reports beside the estimate."""


def _measured_figures(estimate: _Estimate, measured: Sizes, device: str) -> list[Figure]:
    s = estimate.sizes
    estimated = {**s, "weights": s["weights"] + s["adapters"]}  # measured: adapters included
    figures = [Figure("Device", device)]
    for key, label, fmt in _COMPARED:
        value = measured[key]
        text = draw.size(value) if fmt == "bytes" else format_count(round(value))
        figures.append(
            Figure(f"{label}, measured", f"{text} (estimate {_error(estimated[key], value)})")
        )
    return figures


# --- the table ------------------------------------------------------------------------------


def _columns(estimate: _Estimate) -> Columns:
    checkpointing = estimate.config.gradient_checkpointing
    spec: Columns = (
        ("name", "Block", "text"),
        ("kind", "Kind", "text"),
        ("params", "Params", "count"),
        ("trainable", "Trainable", "count"),
        ("weights", "Weights", "bytes"),
        ("adapters", "Adapters", "bytes"),
        ("gradients", "Grads", "bytes"),
        ("optimizer", "Optimizer", "bytes"),
        ("master", "Master", "bytes"),
        ("saved", "Saved act.", "bytes"),
        ("savedOther", "Saved without ckpt" if checkpointing else "Saved with ckpt", "bytes"),
        ("atPeak", "At peak", "bytes"),
    )
    return tuple(
        column
        for column in spec
        if column[0] not in _OPTIONAL_COLUMNS
        or any(b.sizes[column[0]] > 0 for b in estimate.blocks)
    )


def _rows(estimate: _Estimate) -> list[dict[str, CellValue]]:
    other = "savedPlain" if estimate.config.gradient_checkpointing else "savedCheckpointed"
    rows: list[dict[str, CellValue]] = []
    for block in estimate.blocks:
        s = block.sizes
        at_peak = sum(s[kind] for kind in _RESIDENT) + sum(estimate.held(s).values())
        rows.append(
            {"name": block.name, "kind": block.kind, **s, "savedOther": s[other], "atPeak": at_peak}
        )
    return rows


def training_view(report: Mapping[str, Any]) -> MemoryView:
    """The view of a ``training-profile`` report."""
    model = string(report, "model", "report")
    estimate = _parse_estimate(field(report, "estimate", "report"), "report.estimate")
    totals = [_estimate_bar(estimate)]
    figures = _estimate_figures(estimate)
    if (raw := report.get("measured")) is not None:
        measured = record(raw, "report.measured")
        device = string(measured, "device", "report.measured")
        sizes = _sizes(measured, _MEASURED_FIELDS, "report.measured")
        totals.append(_measured_bar(sizes, device))
        figures += _measured_figures(estimate, sizes, device)
    layers = [LayerGroup(block.name, (_block_bar(block),)) for block in estimate.blocks]
    config = estimate.config
    subtitle = (
        "one measured step next to the estimate"
        if len(totals) > 1
        else "estimate only: nothing measured"
    )
    if config.sharding is not Sharding.NONE:
        subtitle += f" · per device of {config.devices} ({config.sharding}); blocks unsharded"
    return draw.view(
        title=f"Training step · {model} · {config.describe()}",
        subtitle=subtitle,
        figures=figures,
        totals=totals,
        layers=layers,
        spec=_columns(estimate),
        values=_rows(estimate),
        notes=(*strings(report.get("notes")), *estimate.notes),
    )
