"""The Llama-style decoder most open LLMs share: RMSNorm, rotary attention, gated MLP.

Families differ in a handful of switches (biases, fused projections, extra norms, MoE
experts, sliding-window layers); :class:`RopeDecoderLayout` names them and
:func:`rope_decoder` turns a config plus a layout into an ArchitectureSpec whose block
and tensor names are the transformers module paths.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from memlens.errors import ConfigError
from memlens.profiler.architectures.config_view import ConfigView
from memlens.profiler.architectures.spec import (
    ArchitectureSpec,
    AttentionSpec,
    BlockKind,
    BlockSpec,
    ModelDims,
    SavedForBackward,
    lm_head_block,
)
from memlens.profiler.tensors import TensorKind, TensorSpec, embedding, matrix, vector
from memlens.units import format_count


@dataclass(frozen=True)
class RopeDecoderLayout:
    """The switches in which Llama-style families differ."""

    family: str
    model_class: str
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    fused_qkv: bool = False
    fused_gate_up: bool = False
    qk_norm: bool = False
    layer_norms: tuple[str, ...] = ("input_layernorm", "post_attention_layernorm")
    moe: bool = False
    experts: int = 1
    experts_per_token: int = 1
    tie_default: bool = False
    kv_heads_default: int | None = None
    """``num_key_value_heads`` when the key is absent (None: one per attention head); an
    explicit null always means one per attention head."""
    eager_attention: bool = False


def head_dim(cfg: ConfigView) -> int:
    """``head_dim`` from the config, else hidden size ÷ attention heads."""
    return cfg.optional_int("head_dim") or cfg.integer("hidden_size") // cfg.integer(
        "num_attention_heads"
    )


def check_heads(cfg: ConfigView, hidden: int, heads: int, kv_heads: int, dim: int) -> None:
    """Raise ConfigError for head counts transformers would reject or build degenerate."""
    if not cfg.has("head_dim") and hidden % heads:
        raise ConfigError(
            f"{cfg.source}: hidden_size {hidden} is not divisible by {heads} attention heads"
        )
    if dim < 1:
        raise ConfigError(f"{cfg.source}: head_dim would be {dim}")
    if heads % kv_heads:
        raise ConfigError(
            f"{cfg.source}: {heads} attention heads cannot share {kv_heads} key/value heads evenly"
        )


def windows_from_layer_types(
    cfg: ConfigView, window: int | None, default_types: list[str]
) -> list[int | None]:
    """Per-layer sliding window (None for full attention) from ``layer_types``."""
    types = cfg.layer_types(len(default_types)) or default_types
    return [window if kind == "sliding_attention" else None for kind in types]


def full_attention(cfg: ConfigView) -> list[int | None]:
    """No layer slides."""
    return [None] * cfg.integer("num_hidden_layers")


def uniform_windows(cfg: ConfigView, default_window: int | None) -> list[int | None]:
    """Every layer slides when the config sets ``sliding_window`` (Mistral, Phi-3)."""
    window = cfg.nullable_int("sliding_window", default_window)
    return [window] * cfg.integer("num_hidden_layers")


def _attention_tensors(
    layout: RopeDecoderLayout, hidden: int, q_out: int, kv_out: int, dim: int
) -> list[TensorSpec]:
    if layout.fused_qkv:
        tensors = [matrix("self_attn.qkv_proj.weight", q_out + 2 * kv_out, hidden)]
        if layout.qkv_bias:
            tensors.append(vector("self_attn.qkv_proj.bias", q_out + 2 * kv_out))
    else:
        tensors = []
        for proj, out in (("q_proj", q_out), ("k_proj", kv_out), ("v_proj", kv_out)):
            tensors.append(matrix(f"self_attn.{proj}.weight", out, hidden))
            if layout.qkv_bias:
                tensors.append(vector(f"self_attn.{proj}.bias", out))
    tensors.append(matrix("self_attn.o_proj.weight", hidden, q_out))
    if layout.o_bias:
        tensors.append(vector("self_attn.o_proj.bias", hidden))
    if layout.qk_norm:
        tensors += [vector("self_attn.q_norm.weight", dim), vector("self_attn.k_norm.weight", dim)]
    return tensors


def _mlp_tensors(layout: RopeDecoderLayout, hidden: int, inter: int) -> list[TensorSpec]:
    if layout.moe:
        return [
            # The router is not an nn.Linear and stays unquantized: routing is sensitive.
            TensorSpec("mlp.gate.weight", (layout.experts, hidden), TensorKind.OTHER),
            matrix("mlp.experts.gate_up_proj", 2 * inter, hidden, experts=layout.experts),
            matrix("mlp.experts.down_proj", hidden, inter, experts=layout.experts),
        ]
    if layout.fused_gate_up:
        pairs = [("gate_up_proj", 2 * inter, hidden), ("down_proj", hidden, inter)]
    else:
        pairs = [
            ("gate_proj", inter, hidden),
            ("up_proj", inter, hidden),
            ("down_proj", hidden, inter),
        ]
    tensors = []
    for proj, out, inp in pairs:
        tensors.append(matrix(f"mlp.{proj}.weight", out, inp))
        if layout.mlp_bias:
            tensors.append(vector(f"mlp.{proj}.bias", out))
    return tensors


def _saved_for_backward(
    hidden: int, inter: int, heads: int, q_out: int, kv_out: int, layout: RopeDecoderLayout
) -> SavedForBackward:
    """Per position: both norms' inputs (2h), rotated q and k plus v and the attention
    output (2q + 2kv), the MLP's gate, up and activation (3i), the log-sum-exp per head and
    each norm's rsqrt; the q/k/v input (h), the gate/up input (h) and the down input (i)
    when those projections train; each norm's output (h) when the norms train."""
    return SavedForBackward(
        fixed=2 * hidden + 2 * q_out + 2 * kv_out + 3 * inter + heads + 2,
        linear_inputs=(
            (
                ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.qkv_proj"),
                hidden,
            ),
            (("mlp.gate_proj", "mlp.up_proj", "mlp.gate_up_proj"), hidden),
            (("mlp.down_proj",), inter),
        ),
        trained_norms=len(layout.layer_norms) * hidden,
        score_heads=3 * heads if layout.eager_attention else 0,
    )


def rope_decoder(
    cfg: ConfigView, layout: RopeDecoderLayout, windows: list[int | None]
) -> ArchitectureSpec:
    """The ArchitectureSpec of a Llama-style causal LM (``model.*`` + ``lm_head``)."""
    cfg.check_class(layout.model_class)
    hidden = cfg.integer("hidden_size")
    inter = cfg.integer("intermediate_size")
    layers = cfg.integer("num_hidden_layers")
    heads = cfg.integer("num_attention_heads")
    kv_heads = cfg.nullable_int("num_key_value_heads", layout.kv_heads_default) or heads
    vocab = cfg.integer("vocab_size")
    dim = head_dim(cfg)
    check_heads(cfg, hidden, heads, kv_heads, dim)

    layer_tensors = tuple(
        _attention_tensors(layout, hidden, heads * dim, kv_heads * dim, dim)
        + _mlp_tensors(layout, hidden, inter)
        + [vector(f"{norm}.weight", hidden) for norm in layout.layer_norms]
    )
    blocks = [
        BlockSpec("model.embed_tokens", BlockKind.EMBEDDING, (embedding("weight", vocab, hidden),))
    ]
    attention = {w: AttentionSpec(heads, kv_heads, dim, w) for w in set(windows)}
    blocks += [
        BlockSpec(
            f"model.layers.{i}", BlockKind.DECODER_LAYER, layer_tensors, attention[windows[i]]
        )
        for i in range(layers)
    ]
    blocks.append(BlockSpec("model.norm", BlockKind.NORM, (vector("weight", hidden),)))
    blocks.append(
        lm_head_block(
            cfg.flag("tie_word_embeddings", layout.tie_default), "model.embed_tokens", vocab, hidden
        )
    )
    dims = ModelDims(
        hidden,
        inter,
        heads,
        kv_heads,
        dim,
        vocab,
        layers,
        layout.experts,
        layout.experts_per_token,
        cfg.optional_int("max_position_embeddings"),
        mlp_peak_widths=4 if layout.fused_gate_up else 3,
        eager_attention=layout.eager_attention,
    )
    spec = ArchitectureSpec(
        layout.family,
        layout.model_class,
        tuple(blocks),
        dims,
        saved=_saved_for_backward(hidden, inter, heads, heads * dim, kv_heads * dim, layout),
    )
    if not layout.moe:
        return spec
    idle_experts = layout.experts - layout.experts_per_token
    active = spec.params - idle_experts * 3 * hidden * inter * layers
    note = (
        f"mixture of experts: {format_count(active)} of {format_count(spec.params)} parameters "
        f"active per token ({layout.experts_per_token} of {layout.experts} experts); all "
        "experts are resident, so memory follows the total"
    )
    return dataclasses.replace(spec, notes=(note,))
