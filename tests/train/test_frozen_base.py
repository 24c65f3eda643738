"""A compressed base inside a trainable model: its dequantized weight is what it computes
with, and the gradient it passes back is ``grad @ W`` of that weight."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from memlens.engine.weights.layers import (
    COMPUTE_DTYPE,
    CompressedLinear,
    Int4Linear,
    Int8Linear,
    LowRankLinear,
)
from memlens.train.frozen_base import dequantized_weight, frozen_base_forward


def _linear() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(64, 32, bias=False)


@pytest.mark.parametrize(
    "layer",
    [
        Int8Linear.from_linear(_linear()),
        Int4Linear.from_linear(_linear(), 32),
        LowRankLinear.from_linear(_linear(), energy=0.9),
    ],
    ids=["int8", "int4", "lowrank"],
)
def test_dequantized_weight_is_what_the_layer_computes(layer: CompressedLinear) -> None:
    x = torch.randn(4, 64).to(COMPUTE_DTYPE)
    expected = layer(x).float()
    actual = (x.float() @ dequantized_weight(layer).T).to(COMPUTE_DTYPE).float()
    torch.testing.assert_close(actual, expected, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("make", [Int8Linear.from_linear, lambda m: Int4Linear.from_linear(m, 32)])
def test_gradient_through_a_frozen_compressed_base(make: object) -> None:
    layer = make(_linear())  # type: ignore[operator]
    x = torch.randn(3, 64, requires_grad=True)
    upstream = torch.randn(3, 32)
    (frozen_base_forward(layer, x).float() * upstream).sum().backward()
    assert x.grad is not None
    torch.testing.assert_close(x.grad, upstream @ dequantized_weight(layer), rtol=1e-4, atol=1e-4)
