"""The compressed KV cache (memlens/engine/kv/cache.py): exact byte reports, the fast
dequantization against the reference, decoding with transformers and memlens loops,
greedy agreement of INT8 KV on the trained fixture, multi-turn appends, bad input."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from transformers import DynamicCache

from benchmarks.fixtures.byte_llama_model import encode, heldout_text, load_byte_llama
from memlens.engine.decoding import generate
from memlens.engine.kv.cache import CompressedKVCache, CompressedKVLayer, track_attention
from memlens.engine.kv.config import KVCacheConfig, parse_kv
from memlens.errors import UsageError
from memlens.kernels.formats import (
    dequantize_groups,
    dequantize_token_groups,
    quantize_groups,
    quantize_token_groups,
)
from tests.support.byte_model import BYTE_MODEL_CONFIG
from tests.support.tiny_configs import build_model

STORAGES = ["int8", "int4", "int4:g32:r0", "fp", "int8,sinks:4+window:40", "int4,h2o:0.5"]


def _states(
    tokens: int, batch: int = 1, heads: int = 2, dim: int = 64, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    keys = torch.randn(batch, heads, tokens, dim, generator=generator)  # (B, H, T, D)
    return keys, torch.randn(batch, heads, tokens, dim, generator=generator)


def _held_bytes(layer: CompressedKVLayer) -> int:
    """Bytes of the storages behind every tensor the layer references, each counted once."""
    tensors = [value for value in vars(layer).values() if isinstance(value, torch.Tensor)]
    if layer.blocks is not None:
        tensors += layer.blocks.parts()
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
    return sum(storages.values())


def _fp16(scales: torch.Tensor) -> torch.Tensor:
    """Scales or minimums as the cache stores them (float16)."""
    return scales.half().float()


@pytest.fixture(scope="module")
def fixture_model() -> Any:
    model, _ = load_byte_llama(torch.float32)
    return model


@pytest.fixture(scope="module")
def tiny_model() -> Any:
    return build_model(BYTE_MODEL_CONFIG).eval()


@pytest.mark.parametrize("spec", STORAGES)
def test_reported_bytes_are_the_bytes_of_the_tensors_held(spec: str) -> None:
    layer = CompressedKVLayer(parse_kv(spec))
    keys, values = _states(300)
    for start, end in [(0, 150), *((step, step + 1) for step in range(150, 300))]:
        layer.update(keys[..., start:end, :], values[..., start:end, :])
        stored = layer.stored_tokens()  # H2O's attention: 4 query heads, 2 KV heads
        layer.observe_attention(torch.rand(1, 4, end - start, stored).softmax(-1))
    assert layer.nbytes() == _held_bytes(layer)
    report = layer.bytes_held()
    assert report.total == layer.nbytes()
    if layer.blocks is None:
        assert report.residual == layer.stored_tokens() * 2 * 2 * 64 * 4
    else:
        residual_tokens = layer.stored_tokens() - layer.quantized_tokens
        assert report.residual == residual_tokens * 2 * 2 * 64 * 4  # keys + values, fp32
        per_element = 1 if spec.startswith("int8") else 0.5
        assert report.quantized == layer.quantized_tokens * 2 * 2 * 64 * per_element


def test_cache_bytes_add_up_over_layers(tiny_model: Any) -> None:
    cache = CompressedKVCache(parse_kv("int4:g32:r8"), tiny_model.config)
    generate(tiny_model, torch.arange(100) % 256, 20, cache=cache)
    per_layer = cache.bytes_by_layer()
    assert len(per_layer) == BYTE_MODEL_CONFIG["num_hidden_layers"]
    assert cache.nbytes() == sum(item.total for item in per_layer)
    assert [item.total for item in per_layer] == [_held_bytes(cache.layer(i)) for i in (0, 1)]


@pytest.mark.parametrize("bits", [8, 4])
def test_the_dequantized_history_matches_the_reference(bits: int) -> None:
    config = KVCacheConfig(bits=bits, group_size=32, residual_tokens=16)
    layer = CompressedKVLayer(config)
    keys, values = _states(150)
    returned_keys, returned_values = layer.update(keys, values)
    assert torch.equal(returned_keys, keys) and torch.equal(returned_values, values)
    assert layer.quantized_tokens == 128  # 150 - 16 residual, rounded down to blocks of 32
    got_keys, got_values = layer.update(keys[..., :0, :], values[..., :0, :])  # (B, H, 150, D)
    key_q, key_scale, key_low = quantize_token_groups(keys[..., :128, :], bits, 32)
    value_q, value_scale, value_low = quantize_groups(values[..., :128, :], bits, 32)
    expected_keys = dequantize_token_groups(key_q, _fp16(key_scale), _fp16(key_low), 32)
    expected_values = dequantize_groups(value_q, _fp16(value_scale), _fp16(value_low), 32)
    torch.testing.assert_close(got_keys[..., :128, :], expected_keys)
    torch.testing.assert_close(got_values[..., :128, :], expected_values)
    assert torch.equal(got_keys[..., 128:, :], keys[..., 128:, :])  # residual: exact
    error = (got_keys[..., :128, :] - keys[..., :128, :]).norm() / keys[..., :128, :].norm()
    assert error < (0.01 if bits == 8 else 0.15)


def test_keys_are_quantized_per_channel_and_values_per_token() -> None:
    layer = CompressedKVLayer(KVCacheConfig(bits=8, group_size=32, residual_tokens=0))
    keys, values = _states(64)
    keys[..., 5] *= 1000  # one loud channel: per-channel scales keep the others precise
    values[..., 7, :] *= 1000  # one loud token: per-token scales keep the others precise
    layer.update(keys, values)
    got_keys, got_values = layer.update(keys[..., :0, :], values[..., :0, :])
    quiet = [c for c in range(64) if c != 5]
    assert (got_keys[..., quiet] - keys[..., quiet]).abs().max() < 0.05
    assert (got_values[..., 8:, :] - values[..., 8:, :]).abs().max() < 0.05
    assert layer.blocks is not None
    assert layer.blocks.key_scale.shape == (1, 2, 2, 64)  # (B, H, Tq/g, D)
    assert layer.blocks.value_scale.shape == (1, 2, 64, 2)  # (B, H, Tq, D/g)


def test_full_precision_storage_decodes_exactly_like_dynamic_cache(
    tiny_model: Any,
) -> None:
    prompt = torch.arange(40) * 7 % 256
    expected = generate(tiny_model, prompt, 30, cache=DynamicCache(config=tiny_model.config))
    cache = CompressedKVCache(KVCacheConfig(bits=None), tiny_model.config)
    assert torch.equal(generate(tiny_model, prompt, 30, cache=cache), expected)


@pytest.mark.parametrize(
    "spec", ["int8", "int4", "int4:g32:r0", "fp", "int8:g16,sinks:4+window:40", "int4:g16,h2o:0.5"]
)
def test_transformers_generate_runs_with_the_cache(
    fixture_model: Any, tiny_model: Any, spec: str
) -> None:
    prompt = encode(heldout_text()[:120])[None]  # (1, 120)
    for model in (fixture_model, tiny_model):
        cache = CompressedKVCache(parse_kv(spec))
        with track_attention(model, cache):  # H2O reads attention; others ignore it
            out = model.generate(prompt, max_new_tokens=24, do_sample=False, cache=cache)
        assert out.shape == (1, 144)
        assert cache.get_seq_length() == 143  # the last token is chosen, never fed back
        stored = cache.layer(0).stored_tokens()
        assert stored == 143 if cache.config.eviction is None else stored <= 71 + 16 + 1


def test_int8_kv_greedy_matches_full_precision_on_the_trained_fixture(
    fixture_model: Any,
) -> None:
    text = heldout_text()
    prompts = [encode(text[start : start + 200]) for start in (0, 4000, 16000, 32000, 48000)]
    agree = total = 0
    for prompt in prompts:
        expected = generate(fixture_model, prompt, 64)[0, 200:]
        cache = CompressedKVCache(parse_kv("int8"), fixture_model.config)
        got = generate(fixture_model, prompt, 64, cache=cache)[0, 200:]
        agree += int((got == expected).sum())
        total += 64
    assert agree / total >= 0.95


def test_multi_turn_appends_match_one_forward(fixture_model: Any) -> None:
    ids = encode(heldout_text()[:300])[None]  # (1, 300)
    with torch.no_grad():
        whole = fixture_model(input_ids=ids).logits  # (1, 300, V)
        cache = CompressedKVCache(parse_kv("int8:g32:r16"), fixture_model.config)
        turns = [(0, 170), (170, 171), (171, 240), (240, 300)]
        pieces = [
            fixture_model(input_ids=ids[:, a:b], cache=cache, use_cache=True).logits
            for a, b in turns
        ]
    assert cache.get_seq_length() == 300
    torch.testing.assert_close(pieces[0], whole[:, :170])  # nothing quantized yet mattered
    later = torch.cat(pieces[1:], dim=1)
    error = (later - whole[:, 170:]).norm() / whole[:, 170:].norm()
    assert error < 0.02  # the later turns read the INT8 history


def test_batch_reorder_moves_every_row(tiny_model: Any) -> None:
    layer = CompressedKVLayer(parse_kv("int8:g32:r8"))
    keys, values = _states(100, batch=2)
    layer.update(keys, values)
    before, _ = layer.update(keys[..., :0, :], values[..., :0, :])  # (2, H, 100, D)
    layer.reorder_cache(torch.LongTensor([1, 0]))
    after, _ = layer.update(keys[..., :0, :], values[..., :0, :])
    assert torch.equal(after, before.flip(0))


def test_bad_input_is_a_clear_error(tiny_model: Any) -> None:
    layer = CompressedKVLayer(KVCacheConfig(group_size=64))
    with pytest.raises(UsageError, match="head size 80 is not a multiple"):
        layer.update(*_states(4, dim=80))
    layer = CompressedKVLayer(KVCacheConfig(bits=4, group_size=128))
    with pytest.raises(UsageError, match="head size 7 is odd"):
        layer.update(*_states(4, dim=7))
    layer = CompressedKVLayer(KVCacheConfig())
    with pytest.raises(UsageError, match="one shape"):
        layer.update(torch.zeros(1, 2, 4, 8), torch.zeros(1, 2, 5, 8))
    layer.update(*_states(4))
    with pytest.raises(UsageError, match="one shape"):  # after the first update too
        layer.update(torch.zeros(1, 2, 64), torch.zeros(1, 2, 64))
    with pytest.raises(UsageError, match="one shape"):
        layer.update(*_states(1)[:1], torch.zeros(1, 2, 2, 64))
    with pytest.raises(UsageError, match="do not fit"):
        layer.update(*_states(4, heads=3))
    with pytest.raises(UsageError, match="cannot be cropped"):
        layer.crop(-1)
    with pytest.raises(UsageError, match="no layer 5"):
        CompressedKVCache(KVCacheConfig(), tiny_model.config).layer(5)
    sliding = type(tiny_model.config)(**{**tiny_model.config.to_dict(), "sliding_window": 16})
    with pytest.raises(UsageError, match="full-attention layers only"):
        CompressedKVCache(KVCacheConfig(), sliding)


def test_scales_beyond_float16_switch_the_layer_to_float32() -> None:
    layer = CompressedKVLayer(KVCacheConfig(bits=8, group_size=32))
    keys, values = _states(64)
    layer.update(keys, values)  # two float16 blocks
    assert layer.blocks is not None and layer.blocks.key_scale.dtype == torch.float16
    huge_keys, huge_values = keys * 1e5, values * 1e5  # minimums ≈ -3e5: inf in float16
    layer.update(huge_keys, huge_values)
    got_keys, got_values = layer.update(keys[..., :0, :], values[..., :0, :])  # (1, 2, 128, 64)
    expected_keys = torch.cat([keys, huge_keys], dim=-2)
    expected_values = torch.cat([values, huge_values], dim=-2)
    assert torch.isfinite(got_keys).all() and torch.isfinite(got_values).all()
    torch.testing.assert_close(got_keys, expected_keys, rtol=0, atol=0.02 * 1e5)
    torch.testing.assert_close(got_values, expected_values, rtol=0, atol=0.02 * 1e5)
    small_error = (got_keys[..., :64, :] - keys).abs().max()  # widened, not re-quantized
    assert small_error < 0.05
    assert layer.nbytes() == _held_bytes(layer)
    assert layer.scale_dtype == torch.float32
    assert all(part.dtype == torch.float32 for part in layer.blocks.scales())
    assert layer.bytes_held().scales == 4 * 2 * (2 * 4 * 64 + 2 * 128 * 2)  # float32 scale + low


def test_batch_changes_before_the_first_update_do_nothing(tiny_model: Any) -> None:
    cache = CompressedKVCache(parse_kv("int8:g32"), tiny_model.config)
    cache.batch_repeat_interleave(2)
    cache.reorder_cache(torch.LongTensor([0]))
    cache.batch_select_indices(torch.tensor([0]))
    prompt = torch.arange(40) % 256
    expected = generate(tiny_model, prompt, 10, cache=CompressedKVCache(parse_kv("int8:g32")))
    assert torch.equal(generate(tiny_model, prompt, 10, cache=cache), expected)
