"""GLM-4 checkpoints in transformers' native formats: ``glm`` and ``glm4``."""

from __future__ import annotations

from memlens.profiler.architectures.config_view import ConfigView
from memlens.profiler.architectures.registry import register
from memlens.profiler.architectures.rope_decoder import (
    RopeDecoderLayout,
    full_attention,
    rope_decoder,
)
from memlens.profiler.architectures.spec import ArchitectureSpec


@register("glm")
def describe_glm(cfg: ConfigView) -> ArchitectureSpec:
    """GLM-4-9B (``-hf``): biased q/k/v, fused gate/up, two norms per layer."""
    layout = RopeDecoderLayout(
        "glm",
        "GlmForCausalLM",
        qkv_bias=cfg.flag("attention_bias", True),
        fused_gate_up=True,
        kv_heads_default=2,
    )
    return rope_decoder(cfg.with_defaults(head_dim=128), layout, full_attention(cfg))


@register("glm4")
def describe_glm4(cfg: ConfigView) -> ArchitectureSpec:
    """GLM-4-0414: as ``glm`` plus post-attention and post-MLP norms (four per layer)."""
    layout = RopeDecoderLayout(
        "glm4",
        "Glm4ForCausalLM",
        qkv_bias=cfg.flag("attention_bias", True),
        fused_gate_up=True,
        kv_heads_default=2,
        layer_norms=(
            "input_layernorm",
            "post_attention_layernorm",
            "post_self_attn_layernorm",
            "post_mlp_layernorm",
        ),
    )
    return rope_decoder(cfg.with_defaults(head_dim=128), layout, full_attention(cfg))
