"""BERT encoders: ``BertModel`` (with pooler) and the masked / causal LM heads."""

from __future__ import annotations

from memlens.profiler.architectures.config_view import ConfigView
from memlens.profiler.architectures.registry import register
from memlens.profiler.architectures.spec import (
    ArchitectureSpec,
    BlockKind,
    BlockSpec,
    ModelDims,
)
from memlens.profiler.tensors import TensorSpec, embedding, layer_norm, linear, vector

_LM_HEAD_CLASSES = ("BertForMaskedLM", "BertLMHeadModel")


def _encoder_layer(hidden: int, inter: int) -> tuple[TensorSpec, ...]:
    return (
        *linear("attention.self.query", hidden, hidden, True),
        *linear("attention.self.key", hidden, hidden, True),
        *linear("attention.self.value", hidden, hidden, True),
        *linear("attention.output.dense", hidden, hidden, True),
        *layer_norm("attention.output.LayerNorm", hidden),
        *linear("intermediate.dense", inter, hidden, True),
        *linear("output.dense", hidden, inter, True),
        *layer_norm("output.LayerNorm", hidden),
    )


def _mlm_decoder(tied: bool, embedding_block: str, vocab: int, hidden: int) -> BlockSpec:
    """Tied: weight shared with the word embeddings, bias with ``cls.predictions.bias``;
    untied: a weight and a bias of its own."""
    if tied:
        return BlockSpec("cls.predictions.decoder", BlockKind.LM_HEAD, tied_to=embedding_block)
    return BlockSpec(
        "cls.predictions.decoder", BlockKind.LM_HEAD, tuple(linear("", vocab, hidden, True))
    )


@register("bert")
def describe_bert(cfg: ConfigView) -> ArchitectureSpec:
    """The class named first in ``architectures`` decides the head; default ``BertModel``.

    An encoder keeps no KV cache: its KV figures are zero.
    """
    model_class = cfg.check_class("BertModel", *_LM_HEAD_CLASSES)
    hidden = cfg.integer("hidden_size", 768)
    layers = cfg.integer("num_hidden_layers", 12)
    heads = cfg.integer("num_attention_heads", 12)
    inter = cfg.integer("intermediate_size", 3072)
    vocab = cfg.integer("vocab_size", 30522)
    positions = cfg.integer("max_position_embeddings", 512)
    prefix = "bert." if model_class in _LM_HEAD_CLASSES else ""
    emb = f"{prefix}embeddings"

    blocks = [
        BlockSpec(
            f"{emb}.word_embeddings", BlockKind.EMBEDDING, (embedding("weight", vocab, hidden),)
        ),
        BlockSpec(
            f"{emb}.position_embeddings",
            BlockKind.EMBEDDING,
            (embedding("weight", positions, hidden),),
        ),
        BlockSpec(
            f"{emb}.token_type_embeddings",
            BlockKind.EMBEDDING,
            (embedding("weight", cfg.integer("type_vocab_size", 2), hidden),),
        ),
        BlockSpec(f"{emb}.LayerNorm", BlockKind.NORM, tuple(layer_norm("", hidden))),
    ]
    layer = _encoder_layer(hidden, inter)
    blocks += [
        BlockSpec(f"{prefix}encoder.layer.{i}", BlockKind.ENCODER_LAYER, layer)
        for i in range(layers)
    ]
    if model_class in _LM_HEAD_CLASSES:
        blocks += [
            BlockSpec("cls.predictions", BlockKind.HEAD, (vector("bias", vocab),)),
            BlockSpec(
                "cls.predictions.transform.dense",
                BlockKind.HEAD,
                tuple(linear("", hidden, hidden, True)),
            ),
            BlockSpec(
                "cls.predictions.transform.LayerNorm", BlockKind.NORM, tuple(layer_norm("", hidden))
            ),
            _mlm_decoder(
                cfg.flag("tie_word_embeddings", True), f"{emb}.word_embeddings", vocab, hidden
            ),
        ]
    else:
        blocks.append(
            BlockSpec("pooler.dense", BlockKind.HEAD, tuple(linear("", hidden, hidden, True)))
        )
    dims = ModelDims.multi_head(
        hidden,
        inter,
        heads,
        vocab,
        layers,
        max_positions=positions,
        mlp_peak_widths=2,
    )
    return ArchitectureSpec("bert", model_class, tuple(blocks), dims, causal=False)
