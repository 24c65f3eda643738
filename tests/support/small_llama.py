"""A small random Llama in bf16 whose Linears every weight scheme can compress: for the
``compress_`` and ``auto`` plan tests."""

from __future__ import annotations

import torch

from tests.support.tiny_configs import build_model

SMALL_LLAMA_CONFIG = {
    "model_type": "llama",
    "hidden_size": 128,
    "intermediate_size": 320,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 512,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
}


def small_llama() -> torch.nn.Module:
    """A fresh random model of :data:`SMALL_LLAMA_CONFIG` in bf16."""
    return build_model(SMALL_LLAMA_CONFIG).to(torch.bfloat16)
