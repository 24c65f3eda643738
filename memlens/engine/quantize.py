"""``compress_(model, config)``: replace ``nn.Linear`` modules in place.

Each config type registers how it converts one Linear; a new scheme is a new entry.
An INT4 config falls back to INT8 for a Linear whose input features do not divide by
the group size (as the estimator assumes).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from torch import nn

from memlens.engine.config import Int4WeightConfig, Int8WeightConfig, WeightConfig
from memlens.engine.layers import Int4Linear, Int8Linear
from memlens.errors import UsageError

Converter = Callable[[nn.Linear, WeightConfig], nn.Module]
_CONVERTERS: dict[type[WeightConfig], Converter] = {}


def converts(config_type: type[WeightConfig]) -> Callable[[Converter], Converter]:
    """Register how ``config_type`` compresses one Linear."""

    def add(converter: Converter) -> Converter:
        _CONVERTERS[config_type] = converter
        return converter

    return add


@converts(Int8WeightConfig)
def _int8(linear: nn.Linear, config: WeightConfig) -> nn.Module:
    return Int8Linear.from_linear(linear)


@converts(Int4WeightConfig)
def _int4(linear: nn.Linear, config: WeightConfig) -> nn.Module:
    assert isinstance(config, Int4WeightConfig)
    if linear.in_features % config.group_size:
        return Int8Linear.from_linear(linear)
    return Int4Linear.from_linear(linear, config.group_size)


def compress_(model: nn.Module, config: WeightConfig) -> nn.Module:
    """Replace every ``nn.Linear`` not matched by ``config.skip``; returns ``model``.

    A head tied to the embeddings is never replaced (it shares the embedding's weight).
    """
    converter = _CONVERTERS.get(type(config))
    if converter is None:
        raise UsageError(f"no weight scheme registered for {type(config).__name__}")
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    targets = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear)
        and not any(fnmatch.fnmatch(name, pattern) for pattern in config.skip)
        and id(module.weight) not in embeddings
    ]
    for name, linear in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, converter(linear, config))
    return model
