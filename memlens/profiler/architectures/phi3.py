"""Phi-3: fused qkv and gate/up projections; optional uniform sliding window."""

from __future__ import annotations

from memlens.profiler.architectures.config_view import ConfigView
from memlens.profiler.architectures.registry import register
from memlens.profiler.architectures.rope_decoder import (
    RopeDecoderLayout,
    rope_decoder,
    uniform_windows,
)
from memlens.profiler.architectures.spec import ArchitectureSpec


@register("phi3")
def describe_phi3(cfg: ConfigView) -> ArchitectureSpec:
    """Phi-3 mini/medium: ``qkv_proj`` and ``gate_up_proj`` are single matrices."""
    layout = RopeDecoderLayout("phi3", "Phi3ForCausalLM", fused_qkv=True, fused_gate_up=True)
    return rope_decoder(cfg, layout, uniform_windows(cfg, None))
