"""A small byte-level model folder as a user would have one (config, safetensors, tokenizer
marker), with random weights: for CLI and worker tests that need weights on disk."""

from __future__ import annotations

import json
from pathlib import Path

from memlens.engine.tokens import BYTE_TOKENIZER
from tests.support.tiny_configs import build_model

BYTE_MODEL_CONFIG = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 256,
    "max_position_embeddings": 512,
}


def write_byte_model(folder: Path) -> Path:
    """Save the random model and its byte tokenizer marker into ``folder``."""
    build_model(BYTE_MODEL_CONFIG).save_pretrained(folder, safe_serialization=True)
    (folder / BYTE_TOKENIZER).write_text(json.dumps({"kind": "utf-8 bytes"}))
    return folder
