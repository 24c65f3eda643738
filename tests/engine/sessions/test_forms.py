"""A session's KV at rest (memlens/engine/sessions/forms.py): the hot form's spans,
concatenation and byte counts, and the warm form's round trip within half a quantization
step, restored to the model's dtype."""

from __future__ import annotations

import pytest
import torch

from memlens.engine.sessions.forms import FullKV, QuantizedKV, QuantizedTensor
from memlens.kernels.formats import dequantize_groups, quantize_groups
from tests.support.synthetic_kv import HEAD_DIM, HEADS, LAYERS, TOKEN_BYTES, synthetic_kv


@pytest.mark.parametrize("bits", [8, 4])
def test_warm_form_is_the_group_quantizer_with_int4_packed(bits: int) -> None:
    x = torch.randn(1, 2, 5, 8)
    packed = QuantizedTensor.of(x, bits, 4)  # type: ignore[arg-type]
    q, scale, low = quantize_groups(x, bits, 4)
    expected = dequantize_groups(q, scale, low, 4)
    assert torch.equal(packed.dequantize(bits, 4, torch.float32), expected)
    assert packed.values.shape[-1] == (8 if bits == 8 else 4)
    assert packed.values.dtype == torch.uint8


def test_quantized_kv_round_trips_through_its_named_tensors() -> None:
    kv = QuantizedKV.of(synthetic_kv(list(range(12))), 4, 4)
    again = QuantizedKV.from_tensors(kv.to_tensors(), 2, 4, 4, torch.float32)
    assert torch.equal(again.dequantize().layers[1][1], kv.dequantize().layers[1][1])
    full = FullKV.from_tensors(synthetic_kv([1, 2]).to_tensors(), 2)
    assert full.tokens == 2


def test_hot_spans_concatenate_back_to_the_whole_as_copies() -> None:
    full = synthetic_kv(list(range(10)))
    assert full.tokens == 10 and full.nbytes == 10 * TOKEN_BYTES
    assert full.bytes_per_token == TOKEN_BYTES
    head, tail = full.span(0, 4), full.span(4)
    assert (head.tokens, tail.tokens) == (4, 6)
    again = FullKV.concat([head, tail])
    torch.testing.assert_close(again.layers, full.layers, rtol=0, atol=0)
    head.layers[0][0].add_(1.0)  # a span owns its tensors
    torch.testing.assert_close(full.layers, synthetic_kv(list(range(10))).layers)


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("group", [4, 8])
def test_warm_round_trip_is_within_half_a_step_of_each_group(bits: int, group: int) -> None:
    full = synthetic_kv(list(range(20)))
    warm = QuantizedKV.of(full, bits, group)  # type: ignore[arg-type]
    assert warm.tokens == 20 and len(warm.layers) == LAYERS
    restored = warm.dequantize()
    for original, quantized, back in zip(
        (t for pair in full.layers for t in pair),
        (t for pair in warm.layers for t in pair),
        (t for pair in restored.layers for t in pair),
        strict=True,
    ):
        step = quantized.scale.repeat_interleave(group, dim=-1)  # (1, H, T, D)
        assert bool(((back - original).abs() <= step / 2 + 1e-6).all())
    values = 20 * HEADS * HEAD_DIM * 2 * LAYERS  # keys and values, all layers
    scales = 2 * values // group * 4  # a float32 scale and minimum per group
    assert warm.nbytes == values * bits // 8 + scales


def test_warm_form_restores_the_models_dtype() -> None:
    full = FullKV(tuple((k.bfloat16(), v.bfloat16()) for k, v in synthetic_kv([1, 2, 3]).layers))
    warm = QuantizedKV.of(full, 8, 4)
    restored = warm.dequantize()
    assert warm.dtype == torch.bfloat16
    assert all(k.dtype == v.dtype == torch.bfloat16 for k, v in restored.layers)
    error = max(
        (a.float() - b.float()).abs().max().item()
        for a, b in zip((k for k, _ in full.layers), (k for k, _ in restored.layers), strict=True)
    )
    assert error < 0.02  # values lie in [-1, 1]: an 8-bit step is at most 2 / 255
