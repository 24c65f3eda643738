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


def test_int8_matmul_takes_a_weight_8_bytes_off_alignment() -> None:
    """Regression: a weight read by safetensors' loader started 8 bytes past a 64-byte
    boundary and ``_weight_int8pack_mm`` killed the process on an AVX-512 CPU; the gate now
    sends such a weight to the reference."""
    generator = torch.Generator().manual_seed(8)
    q, scale = formats.quantize_int8_weight(torch.randn(256, 256, generator=generator))
    storage = torch.empty(q.numel() + 8, dtype=torch.int8)
    storage[8:] = q.flatten()
    shifted = storage[8:].view(256, 256)  # (N, K), 8 bytes off
    assert not cpu.int8_fits(shifted) and cpu.int8_fits(q)
    x = torch.randn(27, 256, generator=generator).to(torch.bfloat16)  # (M, K), M > 1
    torch.testing.assert_close(int8_matmul(x, shifted, scale), reference.int8_matmul(x, q, scale))


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


@pytest.mark.skipif(not cpu.int8_dyn_available(), reason="fbgemm's quantized engine is not here")
@pytest.mark.parametrize(("m", "k", "n"), SHAPES)
def test_int8_dyn_matmul_matches_reference(m: int, k: int, n: int) -> None:
    generator = torch.Generator().manual_seed(m * n + k)
    weight = torch.randn(n, k, generator=generator)
    x = torch.randn(2, m, k, generator=generator)
    q, scale = formats.quantize_int8_weight(weight)
    expected = reference.int8_dyn_matmul(x, q, scale)
    packed = cpu.pack_int8_dyn(q, scale)
    actual = cpu.int8_dyn_matmul(x, packed)
    # fbgemm may round an activation differently at a .5 boundary: one step of one input
    step = float(x.abs().max()) * 2 / formats.INT8_DYN_LEVELS * float(weight.abs().max())
    torch.testing.assert_close(actual, expected, atol=step, rtol=1e-3)
    unpacked_q, unpacked_scale = cpu.unpack_int8_dyn(packed)
    assert torch.equal(unpacked_q, q)
    torch.testing.assert_close(unpacked_scale, scale)


@pytest.mark.parametrize("shape", [(1, 64), (3, 5, 64)])
def test_int8_dyn_activations_round_trip_within_half_a_step(shape: tuple[int, ...]) -> None:
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(3)) + 0.5  # off-centre
    values, scale, zero = formats.quantize_int8_dyn_activations(x)
    assert int(values.min()) >= 0 and int(values.max()) <= formats.INT8_DYN_LEVELS
    assert (((values - zero).float() * scale - x).abs().max()) <= scale / 2 + 1e-6


def test_int8_dyn_activations_of_zeros_are_exact() -> None:
    values, scale, zero = formats.quantize_int8_dyn_activations(torch.zeros(2, 8))
    assert torch.equal((values - zero).float() * scale, torch.zeros(2, 8))
