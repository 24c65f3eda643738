"""KV-cache bytes the estimator predicts equal the bytes transformers' DynamicCache holds
after real forward passes of tiny random-weight models of each family."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache

from memlens.profiler.architectures import describe
from memlens.profiler.estimate import analytic_estimate, kv_cache_bytes
from memlens.profiler.tensors import StorageDtype
from tests.support.tiny_configs import DECODER_CONFIGS, build_tiny_model, tiny_config

BATCH = 2
PROMPT = 12  # longer than the tiny sliding windows (8)


def _held_bytes(cache: DynamicCache) -> int:
    return sum(
        t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values)
    )


def _storage_bytes(cache: DynamicCache) -> int:
    storages = {
        t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
        for layer in cache.layers
        for t in (layer.keys, layer.values)
    }
    return sum(storages.values())


def _prefill(name: str, tokens: int) -> tuple[torch.nn.Module, DynamicCache]:
    model = build_tiny_model(name)
    ids = torch.randint(3, 320, (BATCH, tokens))
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        model(input_ids=ids, cache=cache, use_cache=True)
    return model, cache


@pytest.mark.parametrize("name", sorted(DECODER_CONFIGS))
def test_kv_bytes_per_token_match_dynamic_cache(name: str) -> None:
    tokens = 5  # inside every window
    _, cache = _prefill(name, tokens)
    [estimate] = analytic_estimate(tiny_config(name), name, [StorageDtype.FP32], context=tokens)
    assert _held_bytes(cache) == estimate.kv_bytes_per_token * tokens * BATCH
    per_layer = [layer.kv_bytes_per_token for layer in estimate.layers if layer.kv_bytes_per_token]
    assert len(per_layer) == len(cache.layers)


@pytest.mark.parametrize("name", sorted(DECODER_CONFIGS))
def test_kv_cache_bytes_after_decode_step_match_dynamic_cache(name: str) -> None:
    model, cache = _prefill(name, PROMPT)
    with torch.no_grad():
        model(input_ids=torch.randint(3, 320, (BATCH, 1)), cache=cache, use_cache=True)
    spec = describe(tiny_config(name))
    assert _held_bytes(cache) == kv_cache_bytes(spec, StorageDtype.FP32, PROMPT + 1, BATCH)


@pytest.mark.parametrize("name", ["mistral-sliding", "gemma2-alternating", "qwen2-sliding"])
def test_sliding_layers_keep_full_prefill_storage_until_next_step(name: str) -> None:
    """Why the estimate's prefill transient includes the full prefill K/V of sliding layers."""
    _, cache = _prefill(name, PROMPT)
    spec = describe(tiny_config(name))
    windowed = kv_cache_bytes(spec, StorageDtype.FP32, PROMPT, BATCH)
    full = kv_cache_bytes(spec, StorageDtype.FP32, PROMPT, BATCH, windowed=False)
    assert windowed < full
    assert _held_bytes(cache) == windowed
    assert _storage_bytes(cache) == full


def test_encoder_has_no_kv_cache() -> None:
    [estimate] = analytic_estimate(tiny_config("bert-mlm"), "bert", [StorageDtype.FP32])
    assert estimate.kv_bytes_per_token == 0 and estimate.kv_cache_bytes == 0


def test_kv_cache_scales_with_batch_and_compute_dtype() -> None:
    config = tiny_config("llama")
    [fp32, bf16, int4] = analytic_estimate(
        config,
        "llama",
        [StorageDtype.FP32, StorageDtype.BF16, StorageDtype.INT4],
        context=100,
        batch=3,
    )
    # 3 layers × K and V × 2 kv heads × 16 dims × 4 bytes
    assert fp32.kv_bytes_per_token == 3 * 2 * 2 * 16 * 4
    assert fp32.kv_cache_bytes == fp32.kv_bytes_per_token * 100 * 3
    assert bf16.kv_cache_bytes * 2 == fp32.kv_cache_bytes
    assert int4.kv_cache_bytes == bf16.kv_cache_bytes  # INT4 weights compute in bf16
