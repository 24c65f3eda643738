"""Gemma (tied, wide heads) and Gemma 2 (four norms, alternating sliding layers)."""

from __future__ import annotations

from memlens.profiler.architectures.config_view import ConfigView
from memlens.profiler.architectures.registry import register
from memlens.profiler.architectures.rope_decoder import (
    RopeDecoderLayout,
    full_attention,
    rope_decoder,
    windows_from_layer_types,
)
from memlens.profiler.architectures.spec import ArchitectureSpec


@register("gemma")
def describe_gemma(cfg: ConfigView) -> ArchitectureSpec:
    """Gemma: Llama-shaped, LM head tied by default."""
    bias = cfg.flag("attention_bias", False)
    layout = RopeDecoderLayout(
        "gemma",
        "GemmaForCausalLM",
        qkv_bias=bias,
        o_bias=bias,
        tie_default=True,
        kv_heads_default=16,
    )
    return rope_decoder(cfg.with_defaults(head_dim=256), layout, full_attention(cfg))


@register("gemma2")
def describe_gemma2(cfg: ConfigView) -> ArchitectureSpec:
    """Gemma 2: pre/post norms around attention and MLP; even layers slide (4096)."""
    bias = cfg.flag("attention_bias", False)
    layout = RopeDecoderLayout(
        "gemma2",
        "Gemma2ForCausalLM",
        eager_attention=True,
        kv_heads_default=4,
        qkv_bias=bias,
        o_bias=bias,
        tie_default=True,
        layer_norms=(
            "input_layernorm",
            "post_attention_layernorm",
            "pre_feedforward_layernorm",
            "post_feedforward_layernorm",
        ),
    )
    layers = cfg.integer("num_hidden_layers")
    defaults = ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(layers)]
    windows = windows_from_layer_types(cfg, cfg.nullable_int("sliding_window", 4096), defaults)
    return rope_decoder(cfg.with_defaults(head_dim=256), layout, windows)
