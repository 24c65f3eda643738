"""Quantization-aware training and export.

``qat_(model, Int4WeightConfig(...) | Int8WeightConfig())`` makes every Linear that
``compress_`` would convert see its weight fake-quantized in the forward pass (a LoRA
layer: base plus adapter, merged, then fake-quantized), so what trains is what deploys.
``export_(model)`` merges the adapters and converts the same Linears into memlens's
compressed layers; ``save_compressed`` then writes a checkpoint ``memlens generate`` and
``memlens chat`` load.
"""

from __future__ import annotations

import fnmatch

import torch
import torch.nn.functional as F
from torch import nn

from memlens.engine.weights.config import WeightConfig
from memlens.engine.weights.schemes import linear_targets, replace_module
from memlens.errors import UsageError
from memlens.train.fake_quant import deployed_scheme, fake_quantize
from memlens.train.lora import LoraLinear, merge_lora_

_CONFIG_ATTRIBUTE = "_memlens_qat_config"


class FakeQuantLinear(nn.Linear):
    """An ``nn.Linear`` whose forward uses its weight fake-quantized to ``scheme``."""

    scheme: WeightConfig

    @classmethod
    def from_linear(cls, linear: nn.Linear, scheme: WeightConfig) -> FakeQuantLinear:
        """Wrap ``linear``'s own parameters (no copy)."""
        module = cls(linear.in_features, linear.out_features, bias=False, device="meta")
        module.weight = linear.weight
        module.bias = linear.bias
        module.scheme = scheme
        return module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (…, in)`` → ``(…, out)``."""
        return F.linear(x, fake_quantize(self.weight, self.scheme), self.bias)


def _skipped(name: str, config: WeightConfig) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in config.skip)


def qat_(model: nn.Module, config: WeightConfig) -> nn.Module:
    """Fake-quantize the forward of every Linear ``compress_(model, config)`` would
    convert (LoRA layers included); returns ``model``. ``config`` is an INT8 or INT4
    weight config; it is recorded on the model for :func:`export_`."""
    deployed_scheme((16, 128), config)  # UsageError for schemes QAT does not train
    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLinear) and not _skipped(name, config):
            module.fake_quant = deployed_scheme((module.out_features, module.in_features), config)
    for name, linear in linear_targets(model):
        if _skipped(name, config) or (name.endswith(".base") and _is_lora_base(model, name)):
            continue
        scheme = deployed_scheme((linear.out_features, linear.in_features), config)
        replace_module(model, name, FakeQuantLinear.from_linear(linear, scheme))
    setattr(model, _CONFIG_ATTRIBUTE, config)
    return model


def _is_lora_base(model: nn.Module, name: str) -> bool:
    return isinstance(model.get_submodule(name.removesuffix(".base")), LoraLinear)


def qat_config(model: nn.Module) -> WeightConfig | None:
    """The config ``qat_`` applied to ``model``, if any."""
    config = getattr(model, _CONFIG_ATTRIBUTE, None)
    return config if isinstance(config, WeightConfig) else None


def export_(model: nn.Module) -> nn.Module:
    """Merge the adapters and convert the fake-quantized Linears into compressed layers
    with the same quantizers; returns ``model`` in eval mode."""
    from memlens.engine.weights.quantize import compress_

    config = qat_config(model)
    if config is None:
        raise UsageError("export_ needs a model prepared with qat_ (it names the scheme)")
    merge_lora_(model)
    for name, module in list(model.named_modules()):
        if isinstance(module, FakeQuantLinear):
            plain = nn.Linear(module.in_features, module.out_features, bias=False, device="meta")
            plain.weight, plain.bias = module.weight, module.bias
            replace_module(model, name, plain)
    with torch.no_grad():
        compress_(model, config)
    delattr(model, _CONFIG_ATTRIBUTE)
    return model.eval()
