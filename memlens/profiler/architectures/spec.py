"""The shape of a model as the estimators see it: blocks of tensors plus attention facts."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property
from typing import Any

from memlens.profiler.tensors import TensorSpec, matrix


class BlockKind(StrEnum):
    """What role a block plays in the model."""

    EMBEDDING = "embedding"
    """Token, position or token-type embeddings (and their norm)."""
    DECODER_LAYER = "decoder_layer"
    """One transformer layer of a causal model (holds a KV cache)."""
    ENCODER_LAYER = "encoder_layer"
    """One transformer layer of an encoder (no KV cache)."""
    NORM = "norm"
    """The final norm."""
    LM_HEAD = "lm_head"
    """The output projection to the vocabulary."""
    HEAD = "head"
    """Any other task head (pooler, MLM transform, projections)."""


@dataclass(frozen=True)
class AttentionSpec:
    """What a layer keeps in the KV cache per token.

    ``sliding_window`` follows transformers' ``DynamicSlidingWindowLayer``: once the
    context passes the window, the layer holds the last ``sliding_window - 1`` tokens.
    """

    num_heads: int
    num_kv_heads: int
    head_dim: int
    sliding_window: int | None = None

    def cached_tokens(self, context: int) -> int:
        """Tokens this layer holds in its cache after ``context`` tokens."""
        if self.sliding_window is None:
            return context
        return min(context, self.sliding_window - 1)

    def kv_elements_per_token(self) -> int:
        """Key plus value elements cached per token (per sequence)."""
        return 2 * self.num_kv_heads * self.head_dim


@dataclass(frozen=True)
class BlockSpec:
    """A named group of parameters: an embedding, one layer, the final norm, a head.

    ``name`` is the module path in the transformers model (``model.layers.3``), so the
    analytic and exact estimators can be compared block by block. A tied block has no
    tensors of its own; ``tied_to`` names the block whose weights it shares.
    """

    name: str
    kind: BlockKind
    tensors: tuple[TensorSpec, ...] = ()
    attention: AttentionSpec | None = None
    tied_to: str | None = None

    @cached_property
    def params(self) -> int:
        """Parameters held by this block (0 when tied)."""
        return sum(t.numel for t in self.tensors)


@dataclass(frozen=True)
class ModelDims:
    """The sizes the activation estimate needs."""

    hidden_size: int
    intermediate_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    num_layers: int
    experts: int = 1
    experts_per_token: int = 1
    max_positions: int | None = None
    mlp_peak_widths: int = 3
    """``intermediate_size``-wide tensors alive at once at the MLP's peak (3 for a gated
    MLP, 4 when gate and up are one fused matrix, 2 for fc → activation, 4 for GPT-2's
    tanh GELU written out in Python)."""
    rotary: bool = True
    """Whether queries and keys get rotary embeddings (temporaries during prefill)."""
    stream_widths: int = 2
    """``hidden_size``-wide tensors alive across all layers during a forward: the embedding
    output and the current layer's input (3 where learned position embeddings are added
    to the token embeddings as separate tensors: GPT-2, OPT)."""
    eager_attention: bool = False
    """Whether transformers runs this family's attention eagerly by default, materialising
    ``heads × tokens × tokens`` scores and a float mask (Gemma 2, for logit soft-capping)."""

    @classmethod
    def multi_head(
        cls, hidden: int, intermediate: int, heads: int, vocab: int, layers: int, **options: Any
    ) -> ModelDims:
        """Dims of a model whose every head keeps its own keys and values (no GQA) and
        whose positions are learned, not rotary (GPT-2, OPT, BERT)."""
        options.setdefault("rotary", False)
        return cls(hidden, intermediate, heads, heads, hidden // heads, vocab, layers, **options)


@dataclass(frozen=True)
class SavedForBackward:
    """What one layer keeps for the backward pass, in elements per position (batch ×
    tokens) at the compute dtype, as transformers 5.x's layers save it under SDPA attention
    (measured with ``torch.autograd.graph.saved_tensors_hooks``).

    An ``nn.Linear`` keeps its input only when its weight trains (a LoRA adapter on it
    keeps it too), so the saved widths depend on what trains.
    """

    fixed: int
    """Widths saved whatever trains (norm inputs, attention inputs and outputs, the MLP's
    activation inputs, per-head log-sum-exp)."""
    linear_inputs: tuple[tuple[tuple[str, ...], int], ...] = ()
    """``(module names in the layer sharing one input, input width)``: saved once when any
    of them trains or carries an adapter."""
    trained_norms: int = 0
    """Widths saved when the layer's norm weights train."""
    score_heads: int = 0
    """Copies of the ``heads × tokens`` attention scores saved per position (eager
    attention)."""


@dataclass(frozen=True)
class ArchitectureSpec:
    """Everything the estimators know about one model config."""

    family: str
    model_class: str
    blocks: tuple[BlockSpec, ...]
    dims: ModelDims
    causal: bool = True
    notes: tuple[str, ...] = field(default=())
    saved: SavedForBackward | None = None
    """The training activation formula; None where memlens has not measured the family
    (the training estimate then uses a generic decoder formula and says so)."""

    @cached_property
    def params(self) -> int:
        """Total parameters, tied weights counted once."""
        return sum(b.params for b in self.blocks)

    @cached_property
    def attention_layers(self) -> tuple[AttentionSpec, ...]:
        """The attention of every block that keeps a KV cache, in order."""
        return tuple(b.attention for b in self.blocks if b.attention is not None)


_HEAD_SUFFIXES = ("ForCausalLM", "LMHeadModel")
"""How transformers names a causal LM class after its bare model (``LlamaForCausalLM``,
``GPT2LMHeadModel`` → ``LlamaModel``, ``GPT2Model``)."""


def base_model(spec: ArchitectureSpec) -> ArchitectureSpec:
    """The bare model ``AutoModel`` builds from a causal LM's spec: the LM head dropped and
    the base model's prefix (``model.``, ``transformer.``) taken off every block name. A
    spec without an LM head is returned as it is (an encoder's default class is already
    its bare model)."""
    kept = tuple(b for b in spec.blocks if b.kind is not BlockKind.LM_HEAD)
    if len(kept) == len(spec.blocks):
        return spec
    prefixes = {b.name.split(".", 1)[0] for b in kept}
    prefix = f"{prefixes.pop()}." if len(prefixes) == 1 and "." in kept[0].name else ""
    blocks = tuple(replace(b, name=b.name.removeprefix(prefix)) for b in kept)
    model_class = next(
        (
            spec.model_class.removesuffix(suffix) + "Model"
            for suffix in _HEAD_SUFFIXES
            if spec.model_class.endswith(suffix)
        ),
        spec.model_class,
    )
    return replace(spec, model_class=model_class, blocks=blocks)


def lm_head_block(
    tied: bool, embedding_block: str, vocab: int, dim: int, name: str = "lm_head"
) -> BlockSpec:
    """The output projection: tied to ``embedding_block`` or its own ``(vocab, dim)`` matrix."""
    if tied:
        return BlockSpec(name, BlockKind.LM_HEAD, tied_to=embedding_block)
    return BlockSpec(name, BlockKind.LM_HEAD, (matrix("weight", vocab, dim),))
