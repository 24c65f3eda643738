"""The predicted peak of ``generate()`` (weights + KV cache + activations) is within ±15%
of the peak measured from the profiler's allocation events, for tiny random models whose
KV cache and activations are a large share of the peak."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from memlens.profiler.architectures import describe
from memlens.profiler.estimate import generate_peak_bytes
from memlens.profiler.measure import measure_peak, module_bytes
from memlens.profiler.tensors import StorageDtype
from tests.support.cuda import needs_cuda
from tests.support.tiny_configs import build_model

_IDS = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
_DECODER = {
    "hidden_size": 256,
    "intermediate_size": 688,
    "num_hidden_layers": 4,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "vocab_size": 2000,
}
PEAK_MODELS: dict[str, dict[str, Any]] = {
    "llama-gqa": {"model_type": "llama", **_DECODER},
    "gpt2": {
        "model_type": "gpt2",
        "n_embd": 256,
        "n_layer": 4,
        "n_head": 8,
        "vocab_size": 2000,
        "n_positions": 1024,
    },
    "gemma2-eager-sliding": {
        "model_type": "gemma2",
        **_DECODER,
        "head_dim": 32,
        "sliding_window": 128,
    },
}
BATCH, PROMPT, NEW = 2, 384, 16


@pytest.mark.parametrize("name", sorted(PEAK_MODELS))
def test_generate_peak_within_15_percent(name: str) -> None:
    config = {**_IDS, **PEAK_MODELS[name]}
    model = build_model(config)
    ids = torch.randint(3, 2000, (BATCH, PROMPT))

    def generate() -> torch.Tensor:
        with torch.no_grad():
            return model.generate(  # type: ignore[no-any-return]
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=NEW,
                min_new_tokens=NEW,
                do_sample=False,
            )

    output, measured = measure_peak(generate, resident_bytes=module_bytes(model))
    assert output.shape == (BATCH, PROMPT + NEW)
    assert measured.peak_extra_bytes > 0.4 * measured.peak_bytes, "weights would dominate"
    predicted = generate_peak_bytes(describe(config), StorageDtype.FP32, BATCH, PROMPT, NEW)
    assert predicted == pytest.approx(measured.peak_bytes, rel=0.15)


def test_measure_peak_counts_transient_allocations() -> None:
    def allocate() -> int:
        a = torch.empty(1_000_000, dtype=torch.uint8)
        b = torch.empty(2_000_000, dtype=torch.uint8)
        del a
        c = torch.empty(500_000, dtype=torch.uint8)
        return b.numel() + c.numel()

    _, measured = measure_peak(allocate, resident_bytes=7)
    assert measured.peak_extra_bytes == 3_000_000
    assert measured.peak_bytes == 3_000_007


@needs_cuda
def test_measure_peak_on_cuda_is_the_allocators_peak() -> None:
    """On CUDA the call's peak is the caching allocator's: a transient 64 MiB block is
    counted, and nothing beyond ``torch.cuda.max_memory_allocated``."""

    def allocate() -> int:
        block = torch.empty(64 << 20, dtype=torch.uint8, device="cuda")
        return block.numel()

    _, measured = measure_peak(allocate, "cuda", resident_bytes=0)
    assert measured.peak_extra_bytes >= 64 << 20
    assert measured.peak_extra_bytes <= torch.cuda.max_memory_allocated()
