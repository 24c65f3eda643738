"""Eviction in the compressed KV cache (memlens/engine/kv/eviction.py): which tokens
StreamingLLM sinks + window and H2O keep, mask sizes that match what attention gets,
attention tracking on a real model, and the errors when H2O has no attention to read."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache

from memlens.engine.decoding import generate
from memlens.engine.kv.cache import CompressedKVCache, CompressedKVLayer, track_attention
from memlens.engine.kv.config import HeavyHitterEviction, KVCacheConfig, parse_kv
from memlens.engine.kv.eviction import accumulate_attention
from memlens.errors import UsageError
from tests.support.byte_model import BYTE_MODEL_CONFIG
from tests.support.tiny_configs import build_model


def _positions(start: int, end: int, heads: int = 2, dim: int = 16) -> torch.Tensor:
    """Keys whose every channel holds the token's position: ``(1, H, end - start, D)``."""
    return torch.arange(start, end, dtype=torch.float32)[None, None, :, None].expand(
        1, heads, -1, dim
    )


def _kept(returned_keys: torch.Tensor) -> list[list[int]]:
    """Positions per head from keys built by :func:`_positions`."""
    return returned_keys[0, :, :, 0].round().long().tolist()  # (H, T)


@pytest.mark.parametrize("spec", ["sinks:4+window:20", "int8:g16:r8,sinks:4+window:20"])
def test_sinks_and_window_keep_the_first_and_the_latest_tokens(spec: str) -> None:
    layer = CompressedKVLayer(parse_kv(spec))
    slack = 0 if spec.startswith("sinks") else 16
    layer.update(_positions(0, 30), _positions(0, 30))
    for step in range(30, 120):
        kv_length, kv_offset = layer.get_mask_sizes(1)
        keys, _ = layer.update(_positions(step, step + 1), _positions(step, step + 1))
        assert keys.shape[-2] == kv_length <= 24 + slack + 1
        kept = _kept(keys)[0]
        assert kept[:4] == [0, 1, 2, 3]
        assert kept[-(kv_length - 4) :] == list(range(step + 1 - (kv_length - 4), step + 1))
        assert kv_offset == step - (kv_length - 1)
    assert layer.get_seq_length() == 120


def test_h2o_keeps_each_heads_heavy_hitters_and_the_recent_tokens() -> None:
    layer = CompressedKVLayer(KVCacheConfig(bits=None, eviction=HeavyHitterEviction(16)))
    layer.update(_positions(0, 60), _positions(0, 60))
    probs = torch.full((1, 4, 60, 60), 1e-3)  # (B, H_q, q, T): query heads 0-1 → KV head 0
    probs[:, :2, :, 10] = 1.0
    probs[:, 2:, :, 20] = 1.0
    probs[:, :, :, 30:38] = torch.linspace(0.5, 0.4, 8)  # the next heaviest, for both
    layer.observe_attention(probs)
    keys, _ = layer.update(_positions(60, 61), _positions(60, 61))
    head0, head1 = _kept(keys)
    recent = list(range(52, 61))  # 8 recent of the budget of 16, then the new token
    assert head0 == sorted([10, *range(30, 37), *recent])
    assert head1 == sorted([20, *range(30, 37), *recent])
    assert layer.stored_tokens() == 17
    assert layer.scores is not None and layer.scores.shape == (1, 2, 16)


def test_h2o_budget_fraction_follows_the_tokens_seen() -> None:
    policy = HeavyHitterEviction(budget_fraction=0.25)
    assert [policy.budget(seen) for seen in (1, 100, 1000)] == [2, 25, 250]
    assert policy.recent_tokens(250) == 125


def test_h2o_without_attention_is_a_clear_error() -> None:
    layer = CompressedKVLayer(parse_kv("h2o:8"))
    layer.update(_positions(0, 20), _positions(0, 20))
    with pytest.raises(UsageError, match="track_attention"):
        layer.update(_positions(20, 21), _positions(20, 21))


def test_attention_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(UsageError, match="do not match"):
        accumulate_attention(None, torch.ones(1, 4, 1, 9), kv_heads=2, stored=10)
    with pytest.raises(UsageError, match="do not match"):
        accumulate_attention(None, torch.ones(1, 3, 1, 10), kv_heads=2, stored=10)


def test_a_window_longer_than_the_text_changes_nothing() -> None:
    model = build_model(BYTE_MODEL_CONFIG).eval()
    prompt = torch.arange(50) * 5 % 256
    expected = generate(model, prompt, 20, cache=DynamicCache(config=model.config))
    cache = CompressedKVCache(parse_kv("fp,sinks:4+window:100"), model.config)
    assert torch.equal(generate(model, prompt, 20, cache=cache), expected)


def test_tracking_feeds_h2o_on_a_real_model_and_restores_attention() -> None:
    model = build_model(BYTE_MODEL_CONFIG).eval()
    before = model.config._attn_implementation
    cache = CompressedKVCache(parse_kv("int8:g16:r8,h2o:0.25"), model.config)
    with track_attention(model, cache):
        out = generate(model, torch.arange(80) % 256, 40, cache=cache)
    assert out.shape == (1, 120)
    assert model.config._attn_implementation == before
    layer = cache.layer(0)
    assert layer.get_seq_length() == 119
    assert layer.stored_tokens() <= 30 + 16 + 1  # 25% of 119 seen, slack of one block
    assert layer.scores is not None and layer.scores.shape[-1] == layer.stored_tokens()


def test_tracking_is_a_no_op_without_h2o() -> None:
    model = build_model(BYTE_MODEL_CONFIG).eval()
    before = model.config._attn_implementation
    with track_attention(model, CompressedKVCache(parse_kv("int8"))):
        assert model.config._attn_implementation == before
        assert not any(m._forward_hooks for m in model.modules())


def test_tracking_a_model_without_attention_layers_is_an_error() -> None:
    cache = CompressedKVCache(parse_kv("h2o:8"))
    with (
        pytest.raises(UsageError, match="no self_attn layers"),
        track_attention(torch.nn.Linear(2, 2), cache),
    ):
        pass


def test_h2o_with_attention_missing_for_some_tokens_is_a_clear_error() -> None:
    layer = CompressedKVLayer(parse_kv("h2o:8"))
    layer.update(_positions(0, 20), _positions(0, 20))
    layer.observe_attention(torch.rand(1, 2, 20, 20).softmax(-1))
    layer.update(_positions(20, 21), _positions(20, 21))  # evicts to 8, then adds 1: unseen
    with pytest.raises(UsageError, match="on every forward pass: attention was seen for 8 of"):
        layer.update(_positions(21, 22), _positions(21, 22))


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_a_multi_token_query_after_eviction_stays_causal(attention: str) -> None:
    model = build_model(BYTE_MODEL_CONFIG).eval()
    model.set_attn_implementation(attention)
    ids = torch.randint(0, 256, (1, 45), generator=torch.Generator().manual_seed(0))
    first_token_logits = []
    for new in (5, 1):  # the first new token must not see the four after it
        cache = CompressedKVCache(parse_kv("int8:g8,sinks:4+window:16"), model.config)
        with torch.no_grad():
            model(input_ids=ids[:, :40], cache=cache, use_cache=True)
            logits = model(input_ids=ids[:, 40 : 40 + new], cache=cache, use_cache=True).logits
        assert cache.layer(0).stored_tokens() == 20 + new  # 40 held > 20 + 8 slack: evicted
        first_token_logits.append(logits[:, 0])
    torch.testing.assert_close(first_token_logits[0], first_token_logits[1])
