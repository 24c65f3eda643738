"""The storage formats (memlens/kernels/formats.py): each quantizer's inverse restores its
input within the format's resolution, and INT4 packing round-trips."""

from __future__ import annotations

import pytest
import torch

from memlens.kernels import formats


def test_quantizers_round_trip_within_their_resolution() -> None:
    weight = torch.randn(64, 128, generator=torch.Generator().manual_seed(1))
    q, scale = formats.quantize_int8_weight(weight)
    assert q.dtype is torch.int8 and int(q.abs().max()) <= 127
    error8 = (q.float() * scale[:, None] - weight).abs()
    assert bool((error8 <= scale[:, None] / 2 + 1e-6).all())
    values, scale4, zero = formats.quantize_int4_weight(weight, 32)
    assert int(values.min()) >= 0 and int(values.max()) <= 15
    error4 = (formats.dequantize_int4_weight(values, scale4, zero, 32) - weight).abs()
    assert bool((error4 <= scale4.repeat_interleave(32, dim=1) / 2 + 1e-5).all())


@pytest.mark.parametrize("bits", [4, 8])
def test_activation_group_quantization_round_trip(bits: int) -> None:
    x = torch.randn(2, 4, 10, 64, generator=torch.Generator().manual_seed(bits))  # (B,H,T,D)
    q, scale, low = formats.quantize_groups(x, bits, 32)
    assert q.shape == x.shape and scale.shape == (2, 4, 10, 2)
    restored = formats.dequantize_groups(q, scale, low, 32)
    assert bool(((restored - x).abs() <= scale.repeat_interleave(32, -1) / 2 + 1e-5).all())


@pytest.mark.parametrize("bits", [8, 4])
def test_token_group_quantization_is_group_quantization_along_tokens(bits: int) -> None:
    x = torch.randn(2, 3, 64, 16, generator=torch.Generator().manual_seed(3))  # (B, H, T, D)
    q, scale, low = formats.quantize_token_groups(x, bits, 32)
    assert q.shape == x.shape and scale.shape == low.shape == (2, 3, 2, 16)  # (B, H, T/g, D)
    flipped = formats.quantize_groups(x.transpose(-1, -2), bits, 32)  # (B, H, D, T)
    assert torch.equal(q, flipped[0].transpose(-1, -2))
    restored = formats.dequantize_token_groups(q, scale, low, 32)
    step = (scale / 2).repeat_interleave(32, dim=-2)  # (B, H, T, D): half a step per element
    assert ((restored - x).abs() <= step + 1e-6).all()


def test_int4_packing_round_trips_and_halves_the_bytes() -> None:
    q = torch.randint(
        0, 16, (3, 5, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(4)
    )
    packed = formats.pack_int4(q)
    assert packed.shape == (3, 5, 4) and packed.dtype == torch.uint8
    assert torch.equal(formats.unpack_int4(packed), q)
    assert torch.equal(packed[..., 0], q[..., 0] | (q[..., 4] << 4))


def test_int8_weight_quantized_in_row_blocks_equals_one_pass() -> None:
    """Regression: one pass over a 32000-row LM head held 0.5 GiB of float temporaries
    while loading compressed; the row blocks must give the very same bytes."""
    weight = torch.randn(2 * formats._INT8_ROWS + 7, 64, generator=torch.Generator().manual_seed(5))
    q, scale = formats.quantize_int8_weight(weight)
    whole = torch.clamp(torch.round(weight / scale[:, None]), -127, 127).to(torch.int8)
    assert torch.equal(q, whole)
    torch.testing.assert_close(scale, weight.abs().amax(dim=1) / 127)
