"""Mistral (sliding-window attention) and Mixtral (sparse mixture of experts)."""

from __future__ import annotations

from memlens.profiler.architectures.config_view import ConfigView
from memlens.profiler.architectures.registry import register
from memlens.profiler.architectures.rope_decoder import (
    RopeDecoderLayout,
    rope_decoder,
    uniform_windows,
)
from memlens.profiler.architectures.spec import ArchitectureSpec


@register("mistral")
def describe_mistral(cfg: ConfigView) -> ArchitectureSpec:
    """Mistral: every layer slides when ``sliding_window`` is set (4096 when absent)."""
    layout = RopeDecoderLayout("mistral", "MistralForCausalLM", kv_heads_default=8)
    return rope_decoder(cfg, layout, uniform_windows(cfg, 4096))


@register("mixtral")
def describe_mixtral(cfg: ConfigView) -> ArchitectureSpec:
    """Mixtral: a router and stacked experts replace the MLP; the KV cache is unchanged."""
    cfg = cfg.with_aliases({"num_experts": "num_local_experts"})
    layout = RopeDecoderLayout(
        "mixtral",
        "MixtralForCausalLM",
        moe=True,
        kv_heads_default=8,
        experts=cfg.integer("num_local_experts", 8),
        experts_per_token=cfg.integer("num_experts_per_tok", 2),
    )
    return rope_decoder(cfg, layout, uniform_windows(cfg, None))
