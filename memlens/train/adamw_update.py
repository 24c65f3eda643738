"""The AdamW update of one tensor, shared by memlens's AdamW variants (8-bit moments, CPU
offload), which differ only in where the moments and the updated copy live."""

from __future__ import annotations

from typing import Any

import torch


def adamw_update_(
    target: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    grad: torch.Tensor,
    step: int,
    group: dict[str, Any],
) -> None:
    """Advance the moments by ``grad`` (float32) and apply the bias-corrected AdamW step with
    decoupled weight decay to ``target``, all in place; ``step`` counts from 1 and ``group``
    is the optimizer's parameter group (``lr``, ``betas``, ``eps``, ``weight_decay``)."""
    beta1, beta2 = group["betas"]
    exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denom = (exp_avg_sq / (1 - beta2**step)).sqrt_().add_(group["eps"])
    update = (exp_avg / (1 - beta1**step)) / denom
    target.mul_(1 - group["lr"] * group["weight_decay"])
    target.add_(update.to(target.dtype), alpha=-group["lr"])
