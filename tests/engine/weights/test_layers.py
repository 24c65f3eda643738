"""``LowRankLinear`` and rank choice (memlens/engine/weights/layers.py)."""

from __future__ import annotations

import pytest
import torch

from memlens.engine.weights.layers import _INT4_ROWS, Int4Linear, LowRankLinear, choose_rank
from memlens.kernels import cpu, pack_int4
from memlens.kernels.formats import quantize_int4_weight


def _low_rank_linear(rank: int, noise: float = 0.0) -> torch.nn.Linear:
    """A 96→80 Linear whose weight has the given rank (plus optional noise)."""
    g = torch.Generator().manual_seed(rank)
    linear = torch.nn.Linear(96, 80)
    weight = torch.randn(80, rank, generator=g) @ torch.randn(rank, 96, generator=g)
    with torch.no_grad():
        linear.weight.copy_(weight + noise * torch.randn(80, 96, generator=g))
    return linear


def test_exactly_low_rank_weights_are_recovered_at_their_rank() -> None:
    linear = _low_rank_linear(12)
    factored = LowRankLinear.from_linear(linear, energy=0.999999)
    assert factored.rank == 12
    x = torch.randn(5, 96)
    with torch.no_grad():
        error = (factored(x) - linear(x)).norm() / linear(x).norm()
    assert float(error) < 0.01  # bf16 factors
    assert factored.down.shape == (12, 96) and factored.up.shape == (80, 12)


def test_energy_rank_keeps_the_requested_share_of_singular_values() -> None:
    s = torch.tensor([4.0, 2.0, 1.0, 1.0])  # squared: 16, 4, 1, 1 of 22
    vh = torch.eye(4)
    assert choose_rank(s, vh, energy=0.72) == 1
    assert choose_rank(s, vh, energy=0.9) == 2
    assert choose_rank(s, vh, energy=0.95) == 3
    assert choose_rank(s, vh, energy=1.0) == 4


def test_error_target_uses_the_calibration_inputs() -> None:
    """Inputs that never excite the second direction make dropping it free."""
    s = torch.tensor([1.0, 10.0, 0.5])
    vh = torch.eye(3)
    inputs = torch.tensor([[1.0, 0.0, 0.0], [2.0, 0.0, 0.1]])
    # by energy the big direction (index 1) must stay; by output error on these inputs
    # only the first direction matters, so rank 1 meets a 10% error target
    assert choose_rank(s, vh, energy=0.99) == 2
    assert choose_rank(s, vh, energy=0.99, max_error=0.1, inputs=inputs) == 1


@pytest.mark.parametrize("max_error", [0.05, 0.2])
def test_measured_output_error_meets_the_target(max_error: float) -> None:
    linear = _low_rank_linear(8, noise=0.3)
    inputs = torch.randn(256, 96, generator=torch.Generator().manual_seed(3))
    factored = LowRankLinear.from_linear(linear, max_error=max_error, inputs=inputs)
    with torch.no_grad():
        reference = linear(inputs)
        error = (factored(inputs) - reference).norm() / reference.norm()
    assert float(error) <= max_error + 0.01  # + bf16 rounding of the factors
    assert factored.rank < 80


def test_int4_layers_refuse_inputs_off_the_cpu() -> None:
    from memlens.engine.weights.layers import Int4Linear
    from memlens.errors import UsageError

    layer = Int4Linear.from_linear(torch.nn.Linear(64, 32), group_size=32)
    with pytest.raises(UsageError, match="CPU"):
        layer(torch.empty(1, 64, device="meta"))


def test_int4_rows_quantized_in_blocks_equal_the_whole_matrix() -> None:
    """Regression: quantizing a 32000-row LM head in one go held 0.9 GiB of temporaries
    while loading compressed; blocks of rows must give the very same layer."""
    rows = _INT4_ROWS * 2 + 64  # two whole blocks and a short one
    linear = torch.nn.Linear(128, rows, bias=False)
    layer = Int4Linear.from_linear(linear, group_size=32)
    values, scale, zero = quantize_int4_weight(linear.weight.detach(), 32)
    assert torch.equal(layer.packed, pack_int4(values, values.device))
    assert torch.equal(
        layer.scales_zeros, cpu.scales_and_zeros(scale, zero).to(layer.scales_zeros.dtype)
    )
