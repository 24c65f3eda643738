"""``compress_(model, config)``: replace ``nn.Linear`` modules in place.

The config resolves to a plan, ``{module name: scheme config or None}``: a scheme config
applies to every Linear not skipped, a :class:`MixedWeightConfig` picks per name, and an
:class:`AutoWeightConfig` is measured on calibration text first
(``memlens/engine/weights/sensitivity.py``). How each scheme converts a layer lives in
``memlens/engine/weights/schemes.py``.
"""

from __future__ import annotations

import fnmatch

import torch
from torch import nn

from memlens.engine.weights.config import (
    AutoWeightConfig,
    LowRankWeightConfig,
    MixedWeightConfig,
    WeightConfig,
)
from memlens.engine.weights.schemes import convert_linear, is_scheme, linear_targets, replace_module
from memlens.engine.weights.sensitivity import Progress, capture_inputs, plan_auto
from memlens.errors import UsageError


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in patterns)


def _pick(name: str, config: WeightConfig) -> WeightConfig | None:
    if _matches(name, config.skip):
        return None
    if isinstance(config, MixedWeightConfig):
        for pattern, inner in config.overrides:
            if fnmatch.fnmatch(name, pattern):
                return inner
        return config.default
    return config


def resolve_plan(model: nn.Module, config: WeightConfig) -> dict[str, WeightConfig | None]:
    """``{name: scheme config, or None to keep}`` for every compressible Linear."""
    if isinstance(config, AutoWeightConfig):
        raise UsageError("resolve an auto config with plan_auto (it needs calibration text)")
    plan = {name: _pick(name, config) for name, _ in linear_targets(model)}
    for choice in plan.values():
        if choice is not None and not is_scheme(choice):
            raise UsageError(f"no weight scheme registered for {type(choice).__name__}")
    return plan


def compress_(
    model: nn.Module,
    config: WeightConfig,
    calibration: torch.Tensor | None = None,
    on_progress: Progress | None = None,
) -> nn.Module:
    """Replace the Linears ``config`` selects; returns ``model``.

    ``calibration`` token ids ``(B, T)`` are needed by ``AutoWeightConfig`` and by a
    low-rank config with ``max_error``. A head tied to the embeddings is never replaced.
    """
    if isinstance(config, AutoWeightConfig):
        config = plan_auto(model, config, calibration, on_progress).config
    plan = resolve_plan(model, config)
    needs_inputs = [
        name
        for name, choice in plan.items()
        if isinstance(choice, LowRankWeightConfig) and choice.max_error is not None
    ]
    inputs: dict[str, torch.Tensor] = {}
    if needs_inputs:
        if calibration is None:
            raise UsageError("a low-rank error target needs calibration token ids")
        inputs = capture_inputs(model, calibration, needs_inputs)
    for done, (name, choice) in enumerate(plan.items()):
        if on_progress:
            on_progress(f"Compressing {name}", done, len(plan))
        if choice is None:
            continue
        linear = model.get_submodule(name)
        assert isinstance(linear, nn.Linear)
        replacement = convert_linear(linear, choice, inputs.pop(name, None))
        if replacement is not linear:
            replace_module(model, name, replacement)
    return model
