"""The KV cache's in-place dequantization (memlens/kernels/kv.py) agrees with the float
references (``reference.dequantize_keys`` / ``dequantize_values``), writing into a view of
a larger tensor and leaving the rest of it alone."""

from __future__ import annotations

import pytest
import torch

from memlens.kernels import formats, reference
from memlens.kernels.kv import dequantize_keys_into, dequantize_values_into

DTYPES = [torch.float32, torch.bfloat16, torch.float16]
_TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 5e-2, torch.float16: 5e-3}


def _quantized(
    bits: int, group: int, value_group: int, seed: int
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    generator = torch.Generator().manual_seed(seed)
    keys = torch.randn(2, 3, 64, 16, generator=generator)  # (B, H, T, D)
    values = torch.randn(2, 3, 64, 16, generator=generator)
    key_q, key_scale, key_low = formats.quantize_token_groups(keys, bits, group)
    value_q, value_scale, value_low = formats.quantize_groups(values, bits, value_group)
    if bits == 4:
        key_q, value_q = formats.pack_int4(key_q), formats.pack_int4(value_q)  # (B, H, T, D/2)
    half = (key_scale.half(), key_low.half(), value_scale.half(), value_low.half())
    return (key_q, half[0], half[1]), (value_q, half[2], half[3])


def _check(device: str, dtype: torch.dtype, bits: int, group: int, value_group: int) -> None:
    (key_q, key_scale, key_low), (value_q, value_scale, value_low) = (
        tuple(t.to(device) for t in part) for part in _quantized(bits, group, value_group, bits)
    )
    out = torch.full((2, 3, 80, 16), 7.0, dtype=dtype, device=device)  # (B, H, T + 16, D)
    dequantize_keys_into(out[..., :64, :], key_q, key_scale, key_low, bits, group)
    expected = reference.dequantize_keys(key_q, key_scale, key_low, bits, group, dtype)
    tolerance = _TOLERANCE[dtype]
    torch.testing.assert_close(out[..., :64, :], expected, atol=tolerance, rtol=tolerance)
    assert bool((out[..., 64:, :] == 7).all())  # the rest of the tensor is untouched
    values = torch.empty(2, 3, 64, 16, dtype=dtype, device=device)
    dequantize_values_into(values, value_q, value_scale, value_low, bits, value_group)
    expected = reference.dequantize_values(
        value_q, value_scale, value_low, bits, value_group, dtype
    )
    torch.testing.assert_close(values, expected, atol=tolerance, rtol=tolerance)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize(("group", "value_group"), [(32, 16), (16, 8)])
def test_dequantize_into_matches_the_reference(
    dtype: torch.dtype, bits: int, group: int, value_group: int
) -> None:
    _check("cpu", dtype, bits, group, value_group)


def test_the_reference_restores_the_quantized_input_within_half_a_step() -> None:
    keys = torch.randn(1, 2, 32, 8, generator=torch.Generator().manual_seed(9))  # (B, H, T, D)
    q, scale, low = formats.quantize_token_groups(keys, 4, 16)
    restored = reference.dequantize_keys(
        formats.pack_int4(q), scale, low, 4, 16, torch.float32
    )  # (B, H, T, D)
    step = (scale / 2).repeat_interleave(16, dim=-2)  # half a step per element
    assert bool(((restored - keys).abs() <= step + 1e-6).all())


@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA device on this machine: the GPU path is checked where one is lent",
)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("bits", [8, 4])
def test_dequantize_into_matches_the_reference_on_cuda(dtype: torch.dtype, bits: int) -> None:
    _check("cuda", dtype, bits, 32, 16)
