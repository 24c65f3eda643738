"""Qwen2/Qwen2.5 (biased q/k/v) and Qwen3 (q/k norms)."""

from __future__ import annotations

from memlens.profiler.architectures.config_view import ConfigView
from memlens.profiler.architectures.registry import register
from memlens.profiler.architectures.rope_decoder import (
    RopeDecoderLayout,
    rope_decoder,
    windows_from_layer_types,
)
from memlens.profiler.architectures.spec import ArchitectureSpec


def _qwen_windows(cfg: ConfigView) -> list[int | None]:
    """Layers from ``max_window_layers`` on slide, only when ``use_sliding_window``."""
    layers = cfg.integer("num_hidden_layers")
    window = (
        cfg.nullable_int("sliding_window", 4096) if cfg.flag("use_sliding_window", False) else None
    )
    first_sliding = cfg.integer("max_window_layers", 28, minimum=0)
    defaults = [
        "sliding_attention" if window is not None and i >= first_sliding else "full_attention"
        for i in range(layers)
    ]
    return windows_from_layer_types(cfg, window, defaults)


@register("qwen2")
def describe_qwen2(cfg: ConfigView) -> ArchitectureSpec:
    """Qwen2: bias on q/k/v (not o); small checkpoints tie the LM head."""
    layout = RopeDecoderLayout("qwen2", "Qwen2ForCausalLM", qkv_bias=True, kv_heads_default=32)
    return rope_decoder(cfg, layout, _qwen_windows(cfg))


@register("qwen3")
def describe_qwen3(cfg: ConfigView) -> ArchitectureSpec:
    """Qwen3: RMSNorm on queries and keys per head; explicit ``head_dim`` (128)."""
    bias = cfg.flag("attention_bias", False)
    layout = RopeDecoderLayout(
        "qwen3",
        "Qwen3ForCausalLM",
        qkv_bias=bias,
        o_bias=bias,
        qk_norm=True,
        kv_heads_default=32,
    )
    return rope_decoder(cfg.with_defaults(head_dim=128), layout, _qwen_windows(cfg))
