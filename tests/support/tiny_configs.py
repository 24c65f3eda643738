"""Shrunken configs of every family with analytic formulas, for fast exact comparisons
and real forward passes. Each keeps its family's quirks (GQA, biases, fused projections,
tied heads, sliding windows, experts) at a size that runs in milliseconds on a CPU."""

from __future__ import annotations

from typing import Any

_IDS = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
_ROPE = {
    "hidden_size": 64,
    "intermediate_size": 96,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 320,
}

TINY_CONFIGS: dict[str, dict[str, Any]] = {
    "llama": {"model_type": "llama", **_ROPE},
    "llama-biased": {"model_type": "llama", **_ROPE, "attention_bias": True, "mlp_bias": True},
    "mistral-sliding": {"model_type": "mistral", **_ROPE, "sliding_window": 8},
    "mixtral-moe": {
        "model_type": "mixtral",
        **_ROPE,
        "num_local_experts": 4,
        "num_experts_per_tok": 2,
    },
    "qwen2-qkv-bias-tied": {"model_type": "qwen2", **_ROPE, "tie_word_embeddings": True},
    "qwen2-sliding": {
        "model_type": "qwen2",
        **_ROPE,
        "use_sliding_window": True,
        "sliding_window": 8,
        "max_window_layers": 1,
    },
    "qwen3": {"model_type": "qwen3", **_ROPE, "head_dim": 32},
    "gemma": {"model_type": "gemma", **_ROPE, "head_dim": 32},
    "gemma2-alternating": {"model_type": "gemma2", **_ROPE, "head_dim": 32, "sliding_window": 8},
    "phi3-fused": {"model_type": "phi3", **_ROPE},
    "glm": {"model_type": "glm", **_ROPE, "head_dim": 16},
    "glm4": {"model_type": "glm4", **_ROPE, "head_dim": 16},
    "gpt2": {
        "model_type": "gpt2",
        "n_embd": 64,
        "n_layer": 3,
        "n_head": 4,
        "vocab_size": 320,
        "n_positions": 128,
    },
    "opt-projected": {
        "model_type": "opt",
        "hidden_size": 64,
        "ffn_dim": 96,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "vocab_size": 320,
        "max_position_embeddings": 128,
        "word_embed_proj_dim": 32,
    },
    "falcon-multi-query": {
        "model_type": "falcon",
        "hidden_size": 64,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "vocab_size": 320,
    },
    "falcon-new-arch": {
        "model_type": "falcon",
        "hidden_size": 64,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "num_kv_heads": 2,
        "vocab_size": 320,
        "new_decoder_architecture": True,
        "bias": True,
    },
    "bert-mlm": {
        "model_type": "bert",
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "vocab_size": 320,
        "max_position_embeddings": 128,
        "architectures": ["BertForMaskedLM"],
    },
    "bert-base-model": {
        "model_type": "bert",
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "vocab_size": 320,
        "max_position_embeddings": 128,
    },
    # Minimal configs: keys left out so transformers' defaults and aliases apply.
    "mistral-defaults": {
        "model_type": "mistral",
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 8,
        "vocab_size": 320,
    },
    "qwen2-kv-heads-absent": {
        "model_type": "qwen2",
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 32,
        "vocab_size": 320,
    },
    "qwen2-kv-heads-null": {"model_type": "qwen2", **_ROPE, "num_key_value_heads": None},
    "gemma2-defaults": {
        "model_type": "gemma2",
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 8,
        "vocab_size": 320,
    },
    "glm-defaults": {
        "model_type": "glm",
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "vocab_size": 320,
    },
    "gpt2-generic-names": {
        "model_type": "gpt2",
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "vocab_size": 320,
        "max_position_embeddings": 64,
    },
    "falcon-n-embed": {
        "model_type": "falcon",
        "n_embed": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "vocab_size": 320,
    },
    "falcon-parallel-two-norms": {
        "model_type": "falcon",
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "vocab_size": 320,
        "num_ln_in_parallel_attn": 2,
        "multi_query": False,
    },
    "mixtral-one-expert": {
        "model_type": "mixtral",
        **_ROPE,
        "num_local_experts": 1,
        "num_experts_per_tok": 1,
    },
    "bert-mlm-untied": {
        "model_type": "bert",
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "vocab_size": 320,
        "architectures": ["BertForMaskedLM"],
        "tie_word_embeddings": False,
    },
}

# transformers 5.x builds this Falcon layout (ln_attn/ln_mlp without the new decoder
# architecture) but its forward reads ``input_layernorm``, so it cannot run a forward pass.
_CANNOT_RUN = {"falcon-parallel-two-norms"}
# A family memlens has no analytic formulas for (the exact estimator's fallback path).
NEOX_CONFIG = {
    "model_type": "gpt_neox",
    "hidden_size": 64,
    "intermediate_size": 96,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "vocab_size": 320,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
}

DECODER_CONFIGS = {
    k: v for k, v in TINY_CONFIGS.items() if not k.startswith("bert") and k not in _CANNOT_RUN
}


def tiny_config(name: str) -> dict[str, Any]:
    """A copy of one tiny config with token ids inside its vocabulary."""
    return {**_IDS, **TINY_CONFIGS[name]}


def build_model(config: dict[str, Any]) -> Any:
    """A seeded random-weight causal LM for a config dict with ``model_type``, in eval mode."""
    import torch
    import transformers

    fields = {k: v for k, v in config.items() if k != "model_type"}
    hf_config = transformers.AutoConfig.for_model(config["model_type"], **fields)
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(hf_config).eval()


def build_tiny_model(name: str) -> Any:
    """A random-weight transformers model for one tiny config, in eval mode."""
    return build_model(tiny_config(name))
