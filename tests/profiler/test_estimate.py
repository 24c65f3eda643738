"""The estimator (memlens/profiler/estimate.py) on SmolLM2-135M's shape: INT4 says which
group it really uses where the asked one does not divide a width."""

from __future__ import annotations

from typing import Any

from memlens.profiler.estimate import analytic_estimate
from memlens.profiler.tensors import StorageDtype

SMOLLM2_SHAPE: dict[str, Any] = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "vocab_size": 49152,
    "max_position_embeddings": 8192,
    "tie_word_embeddings": True,
}


def test_int4_notes_the_smaller_group_it_takes_where_128_does_not_divide() -> None:
    [bf16, int4] = analytic_estimate(
        SMOLLM2_SHAPE, "smol", (StorageDtype.BF16, StorageDtype.INT4), group_size=128
    )
    # q, k, v, o, gate, up (576 wide) in 30 layers; down_proj is 1536 wide (128 divides)
    assert "INT4: group 128 does not divide width 576 of 180 matrices: they use group 64" in (
        int4.notes
    )
    [g64] = analytic_estimate(SMOLLM2_SHAPE, "smol", (StorageDtype.INT4,), group_size=64)
    assert not any("does not divide" in note for note in g64.notes)
    assert int4.weight_bytes < g64.weight_bytes < bf16.weight_bytes  # down_proj at g128


def test_load_peak_is_reported_apart_from_the_resting_weights() -> None:
    fp32, bf16, int8, int4 = analytic_estimate(
        SMOLLM2_SHAPE,
        "smol",
        (StorageDtype.FP32, StorageDtype.BF16, StorageDtype.INT8, StorageDtype.INT4),
    )
    assert fp32.load_peak_bytes == fp32.weight_bytes  # float dtypes load as they rest
    assert bf16.load_peak_bytes == bf16.weight_bytes
    embedding = 49152 * 576  # the largest tensor, read in fp32 and cast to bf16
    for quantized in (int8, int4):
        assert quantized.load_peak_bytes == quantized.weight_bytes + embedding * (4 + 2)
        assert quantized.load_peak_bytes < fp32.load_peak_bytes
    assert "load_peak_bytes" in int4.to_json()
