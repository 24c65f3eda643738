"""The weight-only matmuls (memlens/kernels/__init__.py, cpu.py, cuda.py) agree with the
float references."""

from __future__ import annotations

import pytest
import torch

from memlens.kernels import KernelPreference, cpu, formats, int8_matmul, reference

SHAPES = [(1, 64, 32), (3, 256, 128), (7, 512, 96)]  # (M, K, N); odd M and N included


@pytest.mark.parametrize(("m", "k", "n"), SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_int8_matmul_matches_reference(m: int, k: int, n: int, dtype: torch.dtype) -> None:
    generator = torch.Generator().manual_seed(m * k + n)
    weight = torch.randn(n, k, generator=generator)
    x = torch.randn(2, m, k, generator=generator).to(dtype)
    q, scale = formats.quantize_int8_weight(weight)
    expected = reference.int8_matmul(x, q, scale)
    atol = 1e-3 if dtype is torch.float32 else 0.25
    torch.testing.assert_close(int8_matmul(x, q, scale), expected, atol=atol, rtol=2e-2)
    torch.testing.assert_close(int8_matmul(x, q, scale, KernelPreference.REFERENCE), expected)


@pytest.mark.parametrize(("m", "k", "n"), SHAPES)
@pytest.mark.parametrize("group", [32, 64])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_int4_matmul_matches_reference(
    m: int, k: int, n: int, group: int, dtype: torch.dtype
) -> None:
    generator = torch.Generator().manual_seed(m + k * n)
    weight = torch.randn(n, k, generator=generator)
    x = torch.randn(m, k, generator=generator).to(dtype)
    values, scale, zero = formats.quantize_int4_weight(weight, group)
    expected = reference.int4_matmul(x, values, scale, zero, group)
    fast = cpu.int4_matmul(x, cpu.pack_int4(values), group, cpu.scales_and_zeros(scale, zero))
    atol = 1e-3 if dtype is torch.float32 else 0.5
    torch.testing.assert_close(fast, expected, atol=atol, rtol=2e-2)


@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA device on this machine: the GPU path is checked where one is lent",
)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cuda_int8_matmul_matches_reference(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(11)
    weight = torch.randn(96, 160, generator=g)
    q, scale = formats.quantize_int8_weight(weight)
    x = torch.randn(5, 160, generator=g).to(dtype)
    expected = reference.int8_matmul(x.float(), q, scale)
    actual = int8_matmul(x.cuda(), q.cuda(), scale.cuda())
    assert actual.device.type == "cuda"
    torch.testing.assert_close(actual.float().cpu(), expected, rtol=2e-2, atol=2e-2)
