"""Frozen compressed Linears inside a trainable model (QLoRA): their forward runs the
compressed kernels, their backward passes ``grad @ W`` to the layers before them.

The aten packed kernels have no derivative, so the backward uses the dequantized weight,
rebuilt for the moment it is needed and then dropped (the compressed form is what stays
in memory).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import nn

from memlens.engine.weights.layers import (
    COMPUTE_DTYPE,
    CompressedLinear,
    Int8Linear,
    LowRankLinear,
)


def dequantized_weight(module: nn.Module) -> torch.Tensor:
    """The float32 ``(out, in)`` weight a plain or compressed Linear computes with."""
    if isinstance(module, nn.Linear):
        return module.weight.float()
    if isinstance(module, Int8Linear):
        return module.q.float() * module.scale.float()[:, None]  # (out, in)
    if isinstance(module, LowRankLinear):
        return module.up.float() @ module.down.float()  # (out, rank) @ (rank, in)
    if isinstance(module, CompressedLinear):
        # INT4's packed layout belongs to aten: read the weight back through the kernel,
        # one identity row per input feature (exact: 1 × w is w).
        eye = torch.eye(module.in_features, dtype=COMPUTE_DTYPE)  # (in, in)
        columns = module._matmul(eye).float()  # (in, out) = Wᵀ, bias left out
        return columns.T.contiguous()  # (out, in)
    raise TypeError(f"not a Linear: {type(module).__name__}")


class _FrozenCompressed(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, module: CompressedLinear) -> torch.Tensor:
        ctx.module = module
        ctx.x_dtype = x.dtype
        with torch.no_grad():
            out: torch.Tensor = type(module).forward(module, x)  # the class's own forward
            return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        weight = dequantized_weight(ctx.module)  # (out, in)
        return (grad.float() @ weight).to(ctx.x_dtype), None  # (…, in)


def frozen_base_forward(module: CompressedLinear, x: torch.Tensor) -> torch.Tensor:
    """``module(x)`` with a gradient for ``x`` (none for the frozen weights)."""
    out: torch.Tensor = _FrozenCompressed.apply(x, module)  # type: ignore[no-untyped-call]
    return out


def differentiable_(model: nn.Module) -> nn.Module:
    """Let gradients pass through every compressed Linear of ``model`` (an instance-level
    ``forward``, so names and state stay those of the checkpoint); returns ``model``."""
    for module in model.modules():
        if isinstance(module, CompressedLinear) and "forward" not in vars(module):
            module.forward = partial(frozen_base_forward, module)  # type: ignore[method-assign]
    return model
