"""8-bit AdamW: its dynamic code, block storage, exact bytes, and a 50-step trajectory
within tolerance of torch's AdamW on a small problem."""

from __future__ import annotations

import pytest
import torch

from memlens.errors import UsageError
from memlens.train.optimizer8bit import (
    AdamW8bit,
    BlockQuantized,
    _midpoints,
    dynamic_code,
    nearest_code,
)

STEPS = 50
LOSS_TOLERANCE = 0.03
"""Relative difference allowed between the 8-bit and fp32 losses at every step (measured:
at most 1% with 256-element blocks, 2% with 2048)."""
PARAMETER_TOLERANCE = 0.1
"""Relative L2 distance allowed between the 8-bit and fp32 parameters after 50 steps,
measured against how far the parameters moved (measured: 4.5%)."""


@pytest.mark.parametrize("signed", [True, False])
def test_dynamic_code_is_256_sorted_values(signed: bool) -> None:
    code = dynamic_code(signed)
    assert code.numel() == 256
    assert torch.all(code[1:] >= code[:-1])
    assert code.max() == 1.0 and (code.min() < -0.99 if signed else code.min() == 0.0)
    assert (code.abs() > 0).any() and code.abs()[code.abs() > 0].min() < 1e-5  # small values


@pytest.mark.parametrize("signed", [True, False])
def test_table_lookup_equals_bucketize_at_and_around_every_midpoint(signed: bool) -> None:
    code = dynamic_code(signed)
    nearest, bounds = nearest_code(code), _midpoints(code)
    assert nearest is not None
    generator = torch.Generator().manual_seed(3)
    values = torch.cat(
        [
            torch.randn(200_000, generator=generator).clamp(-1, 1),
            bounds,  # exactly on a midpoint: bucketize counts it below
            bounds.nextafter(torch.tensor(2.0)),
            bounds.nextafter(torch.tensor(-2.0)),
            torch.tensor([0.0, -0.0, 1.0, -1.0, 1e-30, -1e-30, 1e-7, -1e-7]),
        ]
    )
    values = values if signed else values.abs()
    assert torch.equal(nearest(values).long(), torch.bucketize(values, bounds))


def test_a_code_too_dense_for_the_table_keeps_bucketize() -> None:
    dense = torch.linspace(1 - 255 * 2**-12, 1.0, 256)  # 2⁻¹² apart: many per 16-bit range
    assert nearest_code(dense) is None
    values = 0.6 * torch.linspace(0.95, 1.0, 64)  # normalised into the code's span
    stored = BlockQuantized(values, dense, block_size=64)
    assert stored.nearest is None
    torch.testing.assert_close(stored.load(), values, atol=0.6 * 2**-13, rtol=0)


def test_block_storage_keeps_relative_precision() -> None:
    values = torch.randn(5000, generator=torch.Generator().manual_seed(0)) * 1e-3
    stored = BlockQuantized(values, dynamic_code(True), block_size=256)
    restored = stored.load()
    assert restored.shape == values.shape
    assert ((restored - values).norm() / values.norm()) < 0.05
    assert stored.nbytes == 20 * 256 + 4 * 20  # 5000 → 20 whole blocks, one absmax each


def _problem() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 64, generator=g)
    target = x @ torch.randn(64, 128, generator=g)
    return x, target, torch.randn(64, 128, generator=g) * 0.1


def _run(
    optimizer_type: type[torch.optim.Optimizer], **options: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Final weight and the loss at every step."""
    x, target, start = _problem()
    weight = torch.nn.Parameter(start.clone())
    optimizer = optimizer_type([weight], lr=1e-2, **options)
    losses = []
    for _ in range(STEPS):
        loss = ((x @ weight - target) ** 2).mean()
        losses.append(float(loss.detach()))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return weight.detach(), torch.tensor(losses)


@pytest.mark.parametrize("block_size", [256, 2048])
def test_trajectory_follows_adamw_over_50_steps(block_size: int) -> None:
    start = _problem()[2]
    reference, reference_losses = _run(torch.optim.AdamW, weight_decay=0.01)
    ours, losses = _run(AdamW8bit, weight_decay=0.01, block_size=block_size, min_8bit_size=1)
    assert ((losses - reference_losses).abs() / reference_losses).max() < LOSS_TOLERANCE
    assert losses[-1] < 0.5 * losses[0]  # it did train
    moved = (reference - start).norm()
    assert (ours - reference).norm() / moved < PARAMETER_TOLERANCE


def test_state_bytes_are_exact() -> None:
    big = torch.nn.Parameter(torch.zeros(4096 + 10))
    small = torch.nn.Parameter(torch.zeros(100))
    optimizer = AdamW8bit([big, small], block_size=2048, min_8bit_size=4096)
    (big.sum() + small.sum()).backward()
    optimizer.step()
    blocks = 3  # 4106 elements in blocks of 2048
    assert optimizer.state_bytes() == 2 * (blocks * 2048 + 4 * blocks) + 2 * 100 * 4


@pytest.mark.parametrize("options", [{"lr": 0.0}, {"betas": (1.0, 0.9)}, {"block_size": 0}])
def test_bad_settings_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(UsageError, match="AdamW8bit"):
        AdamW8bit([torch.nn.Parameter(torch.zeros(3))], **options)  # type: ignore[arg-type]
