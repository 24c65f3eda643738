"""LoRA adapters: ``lora_(model, LoraConfig(...))`` wraps chosen Linears in
:class:`LoraLinear` (base frozen, two small trainable matrices beside it).

The base may be a plain ``nn.Linear`` or one of memlens's compressed layers (QLoRA: the
frozen base already stored as INT8/INT4, adapters in bf16); gradients flow through every
compressed layer to earlier layers via its dequantized weight (``frozen_base.py``).
``qat_`` (``qat.py``) sets :attr:`LoraLinear.fake_quant` so the forward sees the merged,
fake-quantized weight instead.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from memlens.engine.weights.config import WeightConfig
from memlens.engine.weights.layers import CompressedLinear
from memlens.errors import UsageError
from memlens.train.fake_quant import fake_quantize
from memlens.train.frozen_base import dequantized_weight, differentiable_

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""The Linears of a Llama-family block (attention and MLP)."""


@dataclass(frozen=True)
class LoraConfig:
    """Low-rank adapters ``ΔW = (alpha / r) · B @ A`` on the Linears named by ``targets``."""

    r: int = 16
    """Rank of the adapters."""
    alpha: float = 32.0
    """Scale numerator: the update is multiplied by ``alpha / r``."""
    targets: tuple[str, ...] = DEFAULT_TARGETS
    """Module names: a last name component (``q_proj``) or an ``fnmatch`` pattern on the
    full name (``model.layers.0.*``)."""
    dropout: float = 0.0
    """Dropout on the adapter's input while training (ignored under QAT, whose forward
    merges the adapter into the weight)."""
    dtype: torch.dtype = torch.float32
    """Dtype of the adapter matrices (bf16 for QLoRA)."""
    seed: int = 0
    """Seed of the adapters' initialisation."""
    version: int = 1

    def __post_init__(self) -> None:
        if self.r < 1:
            raise UsageError(f"LoRA rank must be at least 1, got {self.r}")
        if self.alpha <= 0:
            raise UsageError(f"LoRA alpha must be positive, got {self.alpha}")
        if not 0 <= self.dropout < 1:
            raise UsageError(f"LoRA dropout must be in [0, 1), got {self.dropout}")
        if not self.targets:
            raise UsageError("LoRA needs at least one target module name")

    @property
    def scaling(self) -> float:
        """``alpha / r``."""
        return self.alpha / self.r


class LoraLinear(nn.Module):
    """``y = base(x) + scaling · dropout(x) @ Aᵀ @ Bᵀ``; only ``lora_a``/``lora_b`` train."""

    def __init__(self, base: nn.Module, config: LoraConfig, generator: torch.Generator) -> None:
        super().__init__()
        self.base = differentiable_(base)
        for param in base.parameters():
            param.requires_grad_(False)
        shape: Any = base  # nn.Linear or a CompressedLinear: both name their features
        self.in_features: int = int(shape.in_features)
        self.out_features: int = int(shape.out_features)
        self.scaling = config.scaling
        self.lora_a = nn.Parameter(torch.empty(config.r, self.in_features, dtype=config.dtype))
        self.lora_b = nn.Parameter(torch.zeros(self.out_features, config.r, dtype=config.dtype))
        bound = 1 / math.sqrt(self.in_features)  # kaiming_uniform(a=√5), as nn.Linear and peft
        with torch.no_grad():
            self.lora_a.uniform_(-bound, bound, generator=generator)
        self.dropout = nn.Dropout(config.dropout)
        self.fake_quant: WeightConfig | None = None
        """Set by ``qat_``: the scheme the merged weight is fake-quantized to."""

    def delta_weight(self) -> torch.Tensor:
        """``scaling · B @ A`` ``(out, in)`` in float32."""
        return self.scaling * (self.lora_b.float() @ self.lora_a.float())

    def merged_weight(self) -> torch.Tensor:
        """Base weight plus the adapter, ``(out, in)`` float32, without fake quantization."""
        return dequantized_weight(self.base) + self.delta_weight()

    def bias(self) -> torch.Tensor | None:
        """The base's bias, if any."""
        bias = getattr(self.base, "bias", None)
        return bias if isinstance(bias, torch.Tensor) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (…, in)`` → ``(…, out)`` in ``x``'s dtype."""
        if self.fake_quant is not None:
            weight = fake_quantize(self.merged_weight(), self.fake_quant)  # (out, in)
            bias = self.bias()
            return F.linear(x, weight.to(x.dtype), None if bias is None else bias.to(x.dtype))
        out = self.base(x)
        assert isinstance(out, torch.Tensor)
        hidden: torch.Tensor = self.dropout(x).to(self.lora_a.dtype) @ self.lora_a.T  # (…, r)
        return out + (self.scaling * (hidden @ self.lora_b.T)).to(out.dtype)  # (…, out)


def _targeted(name: str, patterns: tuple[str, ...]) -> bool:
    last = name.rpartition(".")[2]
    return any(last == p or fnmatch.fnmatch(name, p) for p in patterns)


def lora_targets(model: nn.Module, config: LoraConfig) -> list[tuple[str, nn.Module]]:
    """The modules ``config.targets`` names; UsageError when one is not a Linear (plain or
    compressed) or when none match."""
    chosen = [
        (name, module)
        for name, module in model.named_modules()
        if name and _targeted(name, config.targets)
    ]
    wrong = [
        f"{name} ({type(module).__name__})"
        for name, module in chosen
        if not isinstance(module, nn.Linear | CompressedLinear)
    ]
    if wrong:
        raise UsageError(
            "LoRA adapters go on Linear layers only; these targets are not: " + ", ".join(wrong[:5])
        )
    if not chosen:
        raise UsageError(f"no module matches the LoRA targets {', '.join(config.targets)}")
    return chosen


def lora_(model: nn.Module, config: LoraConfig) -> nn.Module:
    """Freeze ``model`` and wrap each target Linear in a :class:`LoraLinear`; returns
    ``model``. Nothing changes when a target is invalid (the check comes first)."""
    from memlens.engine.weights.schemes import replace_module

    targets = lora_targets(model, config)
    for param in model.parameters():
        param.requires_grad_(False)
    differentiable_(model)  # QLoRA: gradients pass through the compressed layers
    generator = torch.Generator().manual_seed(config.seed)
    for name, module in targets:
        replace_module(model, name, LoraLinear(module, config, generator))
    return model


def trainable_parameters(model: nn.Module) -> int:
    """Number of parameters that receive gradients."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def merge_lora_(model: nn.Module) -> nn.Module:
    """Replace each :class:`LoraLinear` by a plain float32 ``nn.Linear`` holding the merged
    weight (no fake quantization); returns ``model``."""
    from memlens.engine.weights.schemes import replace_module

    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLinear):
            replace_module(model, name, _as_linear(module.merged_weight(), module.bias()))
    return model


def _as_linear(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    out_features, in_features = weight.shape
    linear = nn.Linear(in_features, out_features, bias=bias is not None, device="meta")
    linear.weight = nn.Parameter(weight.detach().float().clone(), requires_grad=False)
    if bias is not None:
        linear.bias = nn.Parameter(bias.detach().float().clone(), requires_grad=False)
    return linear
