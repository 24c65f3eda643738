"""Transient activation memory of a forward pass, from the shapes the code allocates.

Counted per position in units of one ``hidden_size``-wide (or ``intermediate_size``-wide)
tensor at the compute dtype, following transformers' decoder layers:

- across all layers: the embedding output and the current layer's input (plus separate
  position embeddings for GPT-2/OPT), and rotary ``cos``/``sin``;
- inside a layer, the larger of attention (normed input, q/k/v, rotary temporaries,
  attention output; with eager attention also two copies of the ``heads × tokens``
  scores and the GQA-expanded keys and values) and the MLP (normed input, the
  post-attention residual, and the intermediate tensors alive at once);
- attention masks: none for full causal SDPA without padding; a boolean
  ``tokens × tokens`` mask per sequence for sliding-window SDPA; float masks for eager
  attention (one per distinct layer type).
"""

from __future__ import annotations

from dataclasses import dataclass

from memlens.profiler.architectures.spec import ModelDims

_LOGITS_UPCAST_BYTES = 4  # generate() upcasts the last position's logits to fp32
_BOOL_MASK_BYTES = 1


@dataclass(frozen=True)
class ActivationPeak:
    """Peak transient bytes of one forward over ``batch × tokens`` positions."""

    stream_bytes: int
    """Residual stream, embedding output, rotary tables and masks, alive across layers."""
    layer_bytes: int
    """The largest transient inside one layer (attention or MLP)."""
    logits_bytes: int
    """Logits the head produces (last position only for causal generation)."""

    @property
    def total_bytes(self) -> int:
        """The peak: stream plus the largest of a layer's transient and the logits."""
        return self.stream_bytes + max(self.layer_bytes, self.logits_bytes)


def _attention_widths(dims: ModelDims, tokens: int) -> int:
    q_width = dims.num_heads * dims.head_dim
    kv_width = dims.num_kv_heads * dims.head_dim
    widths = dims.hidden_size + 2 * q_width + 2 * kv_width  # normed x, q, k, v, attn output
    if dims.rotary:
        widths += 3 * q_width + kv_width  # q·cos, rotate_half(q)·sin, rotated q; rotated k
    if dims.eager_attention:
        widths += 2 * dims.num_heads * tokens  # scores and their scaled/capped copy
        if dims.num_kv_heads < dims.num_heads:
            widths += 2 * q_width  # repeat_kv expands keys and values to every head
    return widths


def _mlp_widths(dims: ModelDims) -> float:
    residual_and_normed = 2 * dims.hidden_size
    if dims.experts <= 1:
        return residual_and_normed + dims.mlp_peak_widths * dims.intermediate_size
    # MoE: plus the output accumulator and one expert's share of the tokens.
    share = dims.experts_per_token / dims.experts
    expert = dims.hidden_size + 4 * dims.intermediate_size  # gathered x, gate_up, act·up
    return residual_and_normed + dims.hidden_size + share * expert


def _mask_bytes(
    dims: ModelDims, batch: int, tokens: int, float_bytes: int, sliding: bool, causal: bool
) -> int:
    if not causal:
        return 0
    if dims.eager_attention:
        return (2 if sliding else 1) * batch * tokens * tokens * float_bytes
    return batch * tokens * tokens * _BOOL_MASK_BYTES if sliding else 0


def prefill_peak(
    dims: ModelDims,
    batch: int,
    tokens: int,
    float_bytes: int,
    *,
    causal: bool = True,
    lm_head: bool = True,
    sliding: bool = False,
) -> ActivationPeak:
    """Activation peak of a forward over ``batch × tokens`` positions at ``float_bytes``.

    A causal model under ``generate()`` computes logits for the last position only; an
    encoder with an LM head computes them for every position. ``sliding`` says whether
    any layer uses sliding-window attention (which needs an explicit mask).
    """
    positions = batch * tokens
    stream = dims.stream_widths * dims.hidden_size + (2 * dims.head_dim if dims.rotary else 0)
    layer = max(_attention_widths(dims, tokens), _mlp_widths(dims))
    logit_rows = batch if causal else positions
    logits = logit_rows * dims.vocab_size * (float_bytes + _LOGITS_UPCAST_BYTES) if lm_head else 0
    return ActivationPeak(
        stream_bytes=positions * stream * float_bytes
        + _mask_bytes(dims, batch, tokens, float_bytes, sliding, causal),
        layer_bytes=int(positions * layer * float_bytes),
        logits_bytes=logits,
    )
