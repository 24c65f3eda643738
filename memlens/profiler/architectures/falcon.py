"""Falcon: fused query/key/value, multi-query or grouped KV, parallel attention + MLP."""

from __future__ import annotations

from memlens.errors import ConfigError
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
from memlens.profiler.tensors import TensorSpec, embedding, layer_norm, linear


def _layer_norms(cfg: ConfigView, new_arch: bool, hidden: int) -> list[TensorSpec]:
    if not cfg.flag("parallel_attn", True):
        return layer_norm("input_layernorm", hidden) + layer_norm(
            "post_attention_layernorm", hidden
        )
    norms_in_parallel = cfg.optional_int("num_ln_in_parallel_attn", 2 if new_arch else None)
    if norms_in_parallel == 2:
        return layer_norm("ln_attn", hidden) + layer_norm("ln_mlp", hidden)
    return layer_norm("input_layernorm", hidden)


@register("falcon")
def describe_falcon(cfg: ConfigView) -> ArchitectureSpec:
    """FalconForCausalLM (7B/40B/180B layouts); the LM head shares the word embeddings.

    With ``new_decoder_architecture`` the cache holds keys and values broadcast to every
    query head, so the KV cache is as large as multi-head attention's.
    """
    cfg.check_class("FalconForCausalLM")
    cfg = cfg.with_aliases({"n_embed": "hidden_size"})
    hidden = cfg.integer("hidden_size", 4544)
    layers = cfg.integer("num_hidden_layers", 32)
    heads = cfg.integer("num_attention_heads", 71)
    kv_heads = cfg.integer("num_kv_heads", heads)
    vocab = cfg.integer("vocab_size", 65024)
    ffn = cfg.integer("ffn_hidden_size", 4 * hidden)
    bias = cfg.flag("bias", False)
    new_arch = cfg.flag("new_decoder_architecture", False)
    multi_query = cfg.flag("multi_query", True)
    if hidden % heads or heads % kv_heads:
        raise ConfigError(
            f"{cfg.source}: {heads} heads do not divide hidden_size {hidden} "
            f"or share {kv_heads} key/value heads evenly"
        )
    dim = hidden // heads
    if new_arch:
        qkv_out, cached_heads = (heads + 2 * kv_heads) * dim, heads
    elif multi_query:
        qkv_out, cached_heads = hidden + 2 * dim, 1
    else:
        qkv_out, cached_heads = 3 * hidden, kv_heads

    layer = tuple(
        linear("self_attention.query_key_value", qkv_out, hidden, bias)
        + linear("self_attention.dense", hidden, hidden, bias)
        + linear("mlp.dense_h_to_4h", ffn, hidden, bias)
        + linear("mlp.dense_4h_to_h", hidden, ffn, bias)
        + _layer_norms(cfg, new_arch, hidden)
    )
    attention = AttentionSpec(heads, cached_heads, dim)
    blocks = [
        BlockSpec(
            "transformer.word_embeddings",
            BlockKind.EMBEDDING,
            (embedding("weight", vocab, hidden),),
        ),
        *(
            BlockSpec(f"transformer.h.{i}", BlockKind.DECODER_LAYER, layer, attention)
            for i in range(layers)
        ),
        BlockSpec("transformer.ln_f", BlockKind.NORM, tuple(layer_norm("", hidden))),
    ]
    blocks.append(
        lm_head_block(
            cfg.flag("tie_word_embeddings", True), "transformer.word_embeddings", vocab, hidden
        )
    )
    dims = ModelDims(
        hidden,
        ffn,
        heads,
        cached_heads,
        dim,
        vocab,
        layers,
        max_positions=cfg.optional_int("max_position_embeddings"),
        mlp_peak_widths=2,
        rotary=not cfg.flag("alibi", False),
    )
    return ArchitectureSpec("falcon", "FalconForCausalLM", tuple(blocks), dims)
