"""Fake quantization: its forward equals what the compressed layers compute (the
reference matmuls of ``kernels/reference.py``), its backward is the identity."""

from __future__ import annotations

import pytest
import torch

from memlens.engine.weights.config import Int4WeightConfig, Int8WeightConfig, LowRankWeightConfig
from memlens.engine.weights.layers import COMPUTE_DTYPE
from memlens.errors import UsageError
from memlens.kernels import reference
from memlens.kernels.formats import quantize_int4_weight, quantize_int8_weight
from memlens.train.fake_quant import deployed_scheme, fake_quantize


def _weight(out: int = 32, inp: int = 64) -> torch.Tensor:
    return torch.randn(out, inp, generator=torch.Generator().manual_seed(0))


def test_int8_forward_is_the_reference_int8_matmul() -> None:
    weight, x = _weight(), torch.randn(5, 64)
    q, scale = quantize_int8_weight(weight)
    expected = reference.int8_matmul(x, q, scale.to(COMPUTE_DTYPE))
    actual = x @ fake_quantize(weight, Int8WeightConfig()).T
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def test_int4_forward_is_the_reference_int4_matmul() -> None:
    weight, x = _weight(), torch.randn(5, 64)
    values, scale, zero = quantize_int4_weight(weight, 32)
    bf16 = (scale.to(COMPUTE_DTYPE).float(), zero.to(COMPUTE_DTYPE).float())
    expected = reference.int4_matmul(x, values, *bf16, 32)
    actual = x @ fake_quantize(weight, Int4WeightConfig(group_size=32)).T
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("config", [Int8WeightConfig(), Int4WeightConfig(group_size=32)])
def test_gradient_is_straight_through(config: Int8WeightConfig) -> None:
    weight = _weight().requires_grad_()
    upstream = torch.randn(32, 64)
    (fake_quantize(weight, config) * upstream).sum().backward()
    assert weight.grad is not None
    torch.testing.assert_close(weight.grad, upstream)


def test_int4_falls_back_to_int8_where_compress_would() -> None:
    assert deployed_scheme((32, 688), Int4WeightConfig(group_size=32)) == Int8WeightConfig()
    assert deployed_scheme((8, 64), Int4WeightConfig(group_size=32)) == Int8WeightConfig()
    assert deployed_scheme((32, 64), Int4WeightConfig(group_size=32)).scheme == "int4"


def test_low_rank_is_not_a_qat_scheme() -> None:
    with pytest.raises(UsageError, match="int8 or int4"):
        deployed_scheme((32, 64), LowRankWeightConfig())
