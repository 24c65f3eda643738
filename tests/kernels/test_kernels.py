"""Fast CPU kernels (memlens/kernels/cpu.py) agree with the float references, and the
references invert their quantizers within the format's error."""

from __future__ import annotations

import pytest
import torch

from memlens.kernels import KernelPreference, cpu, int8_matmul, reference

SHAPES = [(1, 64, 32), (3, 256, 128), (7, 512, 96)]  # (M, K, N); odd M and N included


@pytest.mark.parametrize(("m", "k", "n"), SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_int8_matmul_matches_reference(m: int, k: int, n: int, dtype: torch.dtype) -> None:
    generator = torch.Generator().manual_seed(m * k + n)
    weight = torch.randn(n, k, generator=generator)
    x = torch.randn(2, m, k, generator=generator).to(dtype)
    q, scale = reference.quantize_int8_weight(weight)
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
    values, scale, zero = reference.quantize_int4_weight(weight, group)
    expected = reference.int4_matmul(x, values, scale, zero, group)
    fast = cpu.int4_matmul(x, cpu.pack_int4(values), group, cpu.scales_and_zeros(scale, zero))
    atol = 1e-3 if dtype is torch.float32 else 0.5
    torch.testing.assert_close(fast, expected, atol=atol, rtol=2e-2)


def test_quantizers_round_trip_within_their_resolution() -> None:
    weight = torch.randn(64, 128, generator=torch.Generator().manual_seed(1))
    q, scale = reference.quantize_int8_weight(weight)
    assert q.dtype is torch.int8 and int(q.abs().max()) <= 127
    error8 = (q.float() * scale[:, None] - weight).abs()
    assert bool((error8 <= scale[:, None] / 2 + 1e-6).all())
    values, scale4, zero = reference.quantize_int4_weight(weight, 32)
    assert int(values.min()) >= 0 and int(values.max()) <= 15
    error4 = (reference.dequantize_int4_weight(values, scale4, zero, 32) - weight).abs()
    assert bool((error4 <= scale4.repeat_interleave(32, dim=1) / 2 + 1e-5).all())


@pytest.mark.parametrize("bits", [4, 8])
def test_activation_group_quantization_round_trip(bits: int) -> None:
    x = torch.randn(2, 4, 10, 64, generator=torch.Generator().manual_seed(bits))  # (B,H,T,D)
    q, scale, low = reference.quantize_groups(x, bits, 32)
    assert q.shape == x.shape and scale.shape == (2, 4, 10, 2)
    restored = reference.dequantize_groups(q, scale, low, 32)
    assert bool(((restored - x).abs() <= scale.repeat_interleave(32, -1) / 2 + 1e-5).all())


@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA device on this machine: the GPU path is checked where one is lent",
)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cuda_int8_matmul_matches_reference(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(11)
    weight = torch.randn(96, 160, generator=g)
    q, scale = reference.quantize_int8_weight(weight)
    x = torch.randn(5, 160, generator=g).to(dtype)
    expected = reference.int8_matmul(x.float(), q, scale)
    actual = int8_matmul(x.cuda(), q.cuda(), scale.cuda())
    assert actual.device.type == "cuda"
    torch.testing.assert_close(actual.float().cpu(), expected, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("bits", [8, 4])
def test_token_group_quantization_is_group_quantization_along_tokens(bits: int) -> None:
    x = torch.randn(2, 3, 64, 16, generator=torch.Generator().manual_seed(3))  # (B, H, T, D)
    q, scale, low = reference.quantize_token_groups(x, bits, 32)
    assert q.shape == x.shape and scale.shape == low.shape == (2, 3, 2, 16)  # (B, H, T/g, D)
    flipped = reference.quantize_groups(x.transpose(-1, -2), bits, 32)  # (B, H, D, T)
    assert torch.equal(q, flipped[0].transpose(-1, -2))
    restored = reference.dequantize_token_groups(q, scale, low, 32)
    step = (scale / 2).repeat_interleave(32, dim=-2)  # (B, H, T, D): half a step per element
    assert ((restored - x).abs() <= step + 1e-6).all()


def test_int4_packing_round_trips_and_halves_the_bytes() -> None:
    q = torch.randint(
        0, 16, (3, 5, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(4)
    )
    packed = reference.pack_int4(q)
    assert packed.shape == (3, 5, 4) and packed.dtype == torch.uint8
    assert torch.equal(reference.unpack_int4(packed), q)
    assert torch.equal(packed[..., 0], q[..., 0] | (q[..., 4] << 4))
