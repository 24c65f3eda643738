"""GPT-2: learned positions, ``Conv1D`` projections stored as ``(in, out)``, tied head."""

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
    SavedForBackward,
    lm_head_block,
)
from memlens.profiler.tensors import embedding, layer_norm, transposed_matrix, vector

# transformers' GPT2Config.attribute_map: the generic names fill GPT-2's own.
_ATTRIBUTE_MAP = {
    "hidden_size": "n_embd",
    "num_hidden_layers": "n_layer",
    "num_attention_heads": "n_head",
    "max_position_embeddings": "n_positions",
}


@register("gpt2")
def describe_gpt2(cfg: ConfigView) -> ArchitectureSpec:
    """GPT2LMHeadModel: ``transformer.*`` blocks; the LM head shares ``wte``."""
    cfg.check_class("GPT2LMHeadModel")
    cfg = cfg.with_aliases(_ATTRIBUTE_MAP)
    hidden = cfg.integer("n_embd", 768)
    layers = cfg.integer("n_layer", 12)
    heads = cfg.integer("n_head", 12)
    if hidden % heads:
        raise ConfigError(f"{cfg.source}: n_embd {hidden} is not divisible by {heads} heads")
    inner = cfg.integer("n_inner", 4 * hidden)
    vocab = cfg.integer("vocab_size", 50257)
    positions = cfg.integer("n_positions", 1024)
    layer = (
        *layer_norm("ln_1", hidden),
        transposed_matrix("attn.c_attn.weight", hidden, 3 * hidden),
        vector("attn.c_attn.bias", 3 * hidden),
        transposed_matrix("attn.c_proj.weight", hidden, hidden),
        vector("attn.c_proj.bias", hidden),
        *layer_norm("ln_2", hidden),
        transposed_matrix("mlp.c_fc.weight", hidden, inner),
        vector("mlp.c_fc.bias", inner),
        transposed_matrix("mlp.c_proj.weight", inner, hidden),
        vector("mlp.c_proj.bias", hidden),
    )
    attention = AttentionSpec(heads, heads, hidden // heads)
    blocks = [
        BlockSpec("transformer.wte", BlockKind.EMBEDDING, (embedding("weight", vocab, hidden),)),
        BlockSpec(
            "transformer.wpe", BlockKind.EMBEDDING, (embedding("weight", positions, hidden),)
        ),
        *(
            BlockSpec(f"transformer.h.{i}", BlockKind.DECODER_LAYER, layer, attention)
            for i in range(layers)
        ),
        BlockSpec("transformer.ln_f", BlockKind.NORM, tuple(layer_norm("", hidden))),
    ]
    blocks.append(
        lm_head_block(cfg.flag("tie_word_embeddings", True), "transformer.wte", vocab, hidden)
    )
    dims = ModelDims.multi_head(
        hidden,
        inner,
        heads,
        vocab,
        layers,
        max_positions=positions,
        mlp_peak_widths=4 if cfg.string("activation_function", "gelu_new") == "gelu_new" else 2,
        stream_widths=3,
    )
    # Per position: layer-norm inputs and statistics, q/k/v and the attention output (7h),
    # GELU's inputs and temporaries (4i), three copies of the eager attention scores; the
    # Conv1D inputs when those projections train.
    saved = SavedForBackward(
        fixed=7 * hidden + 4 * inner + 4,
        linear_inputs=(
            (("attn.c_attn",), hidden),
            (("attn.c_proj",), hidden),
            (("mlp.c_fc",), hidden),
            (("mlp.c_proj",), inner),
        ),
        score_heads=3 * heads,
    )
    return ArchitectureSpec("gpt2", "GPT2LMHeadModel", tuple(blocks), dims, saved=saved)
