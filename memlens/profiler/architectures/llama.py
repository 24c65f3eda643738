"""Llama 2/3/3.1, TinyLlama and other ``model_type: llama`` checkpoints."""

from __future__ import annotations

from memlens.profiler.architectures.config_view import ConfigView
from memlens.profiler.architectures.registry import register
from memlens.profiler.architectures.rope_decoder import (
    RopeDecoderLayout,
    full_attention,
    rope_decoder,
)
from memlens.profiler.architectures.spec import ArchitectureSpec


@register("llama")
def describe_llama(cfg: ConfigView) -> ArchitectureSpec:
    """Llama: optional attention and MLP biases, no sliding window."""
    bias = cfg.flag("attention_bias", False)
    layout = RopeDecoderLayout(
        "llama",
        "LlamaForCausalLM",
        qkv_bias=bias,
        o_bias=bias,
        mlp_bias=cfg.flag("mlp_bias", False),
    )
    return rope_decoder(cfg, layout, full_attention(cfg))
