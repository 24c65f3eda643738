"""How each scheme config converts one ``nn.Linear``: a registry keyed by config type.

A new scheme is a new ``@converts`` entry. A converter may adapt or fall back when its scheme
cannot hold that layer as asked (INT4 takes the largest supported group up to the asked
one that divides the inputs, needs outputs in multiples of 16, else INT8, as the
estimator assumes; a low-rank factorisation that would
not be smaller stays dense).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from memlens.engine.weights.config import (
    Int4WeightConfig,
    Int8DynWeightConfig,
    Int8WeightConfig,
    LowRankWeightConfig,
    WeightConfig,
)
from memlens.engine.weights.layers import (
    CompressedLinear,
    Int4Linear,
    Int8DynLinear,
    Int8Linear,
    LowRankLinear,
)
from memlens.errors import UsageError
from memlens.profiler.tensors import int4_group_size

Converter = Callable[[nn.Linear, WeightConfig, torch.Tensor | None], nn.Module]
_CONVERTERS: dict[type[WeightConfig], Converter] = {}


def converts(config_type: type[WeightConfig]) -> Callable[[Converter], Converter]:
    """Register how ``config_type`` compresses one Linear."""

    def add(converter: Converter) -> Converter:
        _CONVERTERS[config_type] = converter
        return converter

    return add


def convert_linear(
    linear: nn.Linear, config: WeightConfig, inputs: torch.Tensor | None = None
) -> nn.Module:
    """``linear`` compressed by ``config``; ``inputs (n, in)`` are calibration activations
    for schemes that use them."""
    converter = _CONVERTERS.get(type(config))
    if converter is None:
        raise UsageError(f"no weight scheme registered for {type(config).__name__}")
    return converter(linear, config, inputs)


def is_scheme(config: WeightConfig) -> bool:
    """Whether ``config`` converts single layers (rather than planning per layer)."""
    return type(config) in _CONVERTERS


@converts(Int8WeightConfig)
def _int8(linear: nn.Linear, config: WeightConfig, inputs: torch.Tensor | None) -> nn.Module:
    return Int8Linear.from_linear(linear)


@converts(Int8DynWeightConfig)
def _int8_dyn(linear: nn.Linear, config: WeightConfig, inputs: torch.Tensor | None) -> nn.Module:
    return Int8DynLinear.from_linear(linear)


@converts(Int4WeightConfig)
def _int4(linear: nn.Linear, config: WeightConfig, inputs: torch.Tensor | None) -> nn.Module:
    assert isinstance(config, Int4WeightConfig)
    group = int4_group_size(linear.out_features, linear.in_features, config.group_size)
    if group is None:
        return Int8Linear.from_linear(linear)
    return Int4Linear.from_linear(linear, group)


@converts(LowRankWeightConfig)
def _low_rank(linear: nn.Linear, config: WeightConfig, inputs: torch.Tensor | None) -> nn.Module:
    assert isinstance(config, LowRankWeightConfig)
    factored = LowRankLinear.from_linear(linear, config.energy, config.max_error, inputs)
    if factored.rank * (linear.in_features + linear.out_features) >= linear.weight.numel():
        return linear
    return factored


def scheme_of(module: nn.Module) -> str:
    """What a layer actually holds, e.g. ``int4:g64``, ``int8`` (also where an INT4 config
    fell back), ``lowrank:r24`` or ``keep``."""
    return module.label() if isinstance(module, CompressedLinear) else "keep"


def linear_targets(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """Every ``nn.Linear`` a config may compress, by name; a head tied to the embeddings
    is left out (it shares the embedding's weight, which stays as it is)."""
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    return [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and id(module.weight) not in embeddings
    ]


def head_name(model: nn.Module) -> str | None:
    """The name of the LM head Linear, if the model has an untied one."""
    getter = getattr(model, "get_output_embeddings", None)
    head = getter() if callable(getter) else None
    if not isinstance(head, nn.Linear):
        return None
    return next((name for name, m in linear_targets(model) if m is head), None)


def replace_module(model: nn.Module, name: str, module: nn.Module) -> None:
    """Put ``module`` where ``name`` is."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)
