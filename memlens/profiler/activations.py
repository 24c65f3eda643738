"""Transient activation memory of a forward pass, from the shapes the code allocates.

Counted in units of one token's ``hidden_size``-wide (or ``intermediate_size``-wide)
tensor at the compute dtype. During a prefill the residual stream and the embedding
output stay alive across layers; inside a layer the peak is either attention (normed
input, projected queries/keys/values, rotary temporaries, attention output) or the MLP
(normed input plus the intermediate tensors alive at once). Attention scores are not
materialised: transformers' default SDPA path runs a fused kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

from memlens.profiler.architectures.spec import ModelDims

_LOGITS_UPCAST_BYTES = 4  # generate() upcasts the last position's logits to fp32


@dataclass(frozen=True)
class ActivationPeak:
    """Peak transient bytes of one forward over ``batch × tokens`` positions."""

    stream_bytes: int
    """Residual stream and embedding output, alive across all layers."""
    layer_bytes: int
    """The largest transient inside one layer (attention or MLP)."""
    logits_bytes: int
    """Logits the head produces (last position only for causal generation)."""

    @property
    def total_bytes(self) -> int:
        """The peak: stream plus the largest of a layer's transient and the logits."""
        return self.stream_bytes + max(self.layer_bytes, self.logits_bytes)


def _attention_widths(dims: ModelDims) -> int:
    q_width = dims.num_heads * dims.head_dim
    kv_width = dims.num_kv_heads * dims.head_dim
    widths = dims.hidden_size + 2 * q_width + 2 * kv_width  # normed x, q, k, v, attn output
    if dims.rotary:
        widths += 3 * q_width + kv_width  # q·cos, rotate_half(q)·sin, rotated q; rotated k
    return widths


def _mlp_widths(dims: ModelDims) -> float:
    if dims.experts <= 1:
        return dims.hidden_size + dims.mlp_peak_widths * dims.intermediate_size
    # MoE: normed x and the output accumulator, plus one expert's share of the tokens.
    share = dims.experts_per_token / dims.experts
    expert = dims.hidden_size + 4 * dims.intermediate_size  # gathered x, gate_up, act·up
    return 2 * dims.hidden_size + share * expert


def prefill_peak(
    dims: ModelDims,
    batch: int,
    tokens: int,
    float_bytes: int,
    *,
    causal: bool = True,
    lm_head: bool = True,
) -> ActivationPeak:
    """Activation peak of a forward over ``batch × tokens`` positions at ``float_bytes``.

    A causal model under ``generate()`` computes logits for the last position only; an
    encoder with an LM head computes them for every position.
    """
    positions = batch * tokens
    layer = max(_attention_widths(dims), _mlp_widths(dims))
    logit_rows = batch if causal else positions
    logits = logit_rows * dims.vocab_size * (float_bytes + _LOGITS_UPCAST_BYTES) if lm_head else 0
    return ActivationPeak(
        stream_bytes=positions * 2 * dims.hidden_size * float_bytes,
        layer_bytes=int(positions * layer * float_bytes),
        logits_bytes=logits,
    )
