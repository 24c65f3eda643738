"""memlens/train/adamw_update.py: the shared AdamW step equals torch's own AdamW."""

from __future__ import annotations

import torch

from memlens.train.adamw_update import adamw_update_


def test_ten_steps_follow_torch_adamw() -> None:
    torch.manual_seed(0)
    reference = torch.nn.Parameter(torch.randn(64, 32))
    ours = reference.detach().clone()
    group = {"lr": 1e-2, "betas": (0.9, 0.99), "eps": 1e-8, "weight_decay": 0.1}
    optimizer = torch.optim.AdamW([reference], **group)
    exp_avg, exp_avg_sq = torch.zeros_like(ours), torch.zeros_like(ours)
    for step in range(1, 11):
        grad = torch.randn_like(ours)
        reference.grad = grad.clone()
        optimizer.step()
        adamw_update_(ours, exp_avg, exp_avg_sq, grad, step, group)
    torch.testing.assert_close(ours, reference.detach(), rtol=1e-5, atol=1e-6)
