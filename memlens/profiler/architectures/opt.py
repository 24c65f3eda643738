"""OPT: learned positions with an offset of 2, biased projections, optional projection dim."""

from __future__ import annotations

from memlens.profiler.architectures.config_view import ConfigView
from memlens.profiler.architectures.registry import register
from memlens.profiler.architectures.spec import (
    ArchitectureSpec,
    AttentionSpec,
    BlockKind,
    BlockSpec,
    ModelDims,
    lm_head_block,
)
from memlens.profiler.tensors import embedding, layer_norm, linear, matrix

_POSITION_OFFSET = 2  # OPTLearnedPositionalEmbedding reserves two rows


@register("opt")
def describe_opt(cfg: ConfigView) -> ArchitectureSpec:
    """OPTForCausalLM: ``model.decoder.*`` blocks; the LM head shares ``embed_tokens``."""
    cfg.check_class("OPTForCausalLM")
    hidden = cfg.integer("hidden_size", 768)
    layers = cfg.integer("num_hidden_layers", 12)
    heads = cfg.integer("num_attention_heads", 12)
    ffn = cfg.integer("ffn_dim", 3072)
    vocab = cfg.integer("vocab_size", 50272)
    positions = cfg.integer("max_position_embeddings", 2048)
    proj = cfg.integer("word_embed_proj_dim", hidden)
    bias = cfg.flag("enable_bias", True)
    affine = cfg.flag("layer_norm_elementwise_affine", True)
    prefix = "model.decoder"

    layer = tuple(
        linear("self_attn.k_proj", hidden, hidden, bias)
        + linear("self_attn.v_proj", hidden, hidden, bias)
        + linear("self_attn.q_proj", hidden, hidden, bias)
        + linear("self_attn.out_proj", hidden, hidden, bias)
        + layer_norm("self_attn_layer_norm", hidden, affine)
        + linear("fc1", ffn, hidden, bias)
        + linear("fc2", hidden, ffn, bias)
        + layer_norm("final_layer_norm", hidden, affine)
    )
    attention = AttentionSpec(heads, heads, hidden // heads)
    blocks = [
        BlockSpec(
            f"{prefix}.embed_tokens", BlockKind.EMBEDDING, (embedding("weight", vocab, proj),)
        ),
        BlockSpec(
            f"{prefix}.embed_positions",
            BlockKind.EMBEDDING,
            (embedding("weight", positions + _POSITION_OFFSET, hidden),),
        ),
    ]
    if proj != hidden:
        blocks += [
            BlockSpec(f"{prefix}.project_out", BlockKind.HEAD, (matrix("weight", proj, hidden),)),
            BlockSpec(f"{prefix}.project_in", BlockKind.HEAD, (matrix("weight", hidden, proj),)),
        ]
    final_norm = cfg.flag("do_layer_norm_before", True) and not cfg.flag(
        "_remove_final_layer_norm", False
    )
    if final_norm and affine:
        blocks.append(
            BlockSpec(f"{prefix}.final_layer_norm", BlockKind.NORM, tuple(layer_norm("", hidden)))
        )
    blocks += [
        BlockSpec(f"{prefix}.layers.{i}", BlockKind.DECODER_LAYER, layer, attention)
        for i in range(layers)
    ]
    blocks.append(
        lm_head_block(cfg.flag("tie_word_embeddings", True), f"{prefix}.embed_tokens", vocab, proj)
    )
    dims = ModelDims.multi_head(
        hidden,
        ffn,
        heads,
        vocab,
        layers,
        max_positions=positions,
        mlp_peak_widths=2,
        stream_widths=3,
    )
    return ArchitectureSpec("opt", "OPTForCausalLM", tuple(blocks), dims)
