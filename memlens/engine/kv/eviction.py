"""Which tokens a compressed KV cache keeps under a budget (StreamingLLM sinks + window,
H2O heavy hitters): plain arithmetic on token counts and attention scores that knows
nothing of the cache (``cache.py`` calls it; ``track_attention`` there feeds H2O).

The cache asks :func:`kept_length` how many tokens survive before each update (the
attention mask needs that number before the layer runs) and :func:`kept_indices` which.
Evicting only once the cache holds ``slack`` tokens over budget lets a quantized cache
evict (and re-quantize what it keeps) once per block instead of once per token; the
tokens kept are dequantized and quantized again in new groups each time, which adds a
little error to the oldest ones (``benchmarks/engine_kv.py`` measures the result).
"""

from __future__ import annotations

import torch
from torch import nn

from memlens.engine.kv.config import Eviction, HeavyHitterEviction, SinkWindowEviction
from memlens.errors import UsageError

__all__ = ["accumulate_attention", "kept_indices", "kept_length"]

_NEEDS_ATTENTION = (
    "H2O eviction needs the attention probabilities: run the model inside "
    "memlens.engine.track_attention(model, cache)"
)


def kept_length(policy: Eviction | None, stored: int, seen: int, slack: int) -> int:
    """Tokens left of ``stored`` once ``policy`` has run, ``seen`` tokens having gone
    through the cache: all of them until they exceed the budget by more than ``slack``,
    then the budget."""
    if policy is None:
        return stored
    budget = policy.budget(seen)
    return stored if stored <= budget + slack else budget


def kept_indices(
    policy: Eviction,
    keep: int,
    stored: int,
    scores: torch.Tensor | None,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Ascending positions ``(B, H, keep)`` (H2O, per head) or ``(keep,)`` (sinks + window,
    shared) of the ``stored`` tokens to keep, on ``device`` (the cache's: no host copy);
    ``scores (B, H, stored)`` is the attention each token received so far (H2O only)."""
    if isinstance(policy, SinkWindowEviction):
        sinks = min(policy.sinks, keep)
        head = torch.arange(sinks, device=device)
        return torch.cat([head, torch.arange(stored - (keep - sinks), stored, device=device)])
    if scores is None:
        raise UsageError(_NEEDS_ATTENTION)
    if scores.shape[-1] != stored:
        raise UsageError(
            f"{_NEEDS_ATTENTION} on every forward pass: attention was seen for "
            f"{scores.shape[-1]} of the {stored} cached tokens"
        )
    return _heavy_hitters(policy, keep, scores)


def _heavy_hitters(policy: HeavyHitterEviction, keep: int, scores: torch.Tensor) -> torch.Tensor:
    batch, heads, stored = scores.shape  # (B, H, T)
    recent = policy.recent_tokens(keep)
    older = scores[..., : stored - recent]  # (B, H, T - recent)
    heavy = older.topk(keep - recent, dim=-1).indices.sort(dim=-1).values  # (B, H, keep - recent)
    tail = torch.arange(stored - recent, stored, device=scores.device)
    return torch.cat([heavy, tail.expand(batch, heads, recent)], dim=-1)  # (B, H, keep)


def accumulate_attention(
    scores: torch.Tensor | None, probs: torch.Tensor, kv_heads: int, stored: int
) -> torch.Tensor:
    """Add the attention ``probs (B, H_q, q, T)`` received by each of the ``stored == T``
    cached tokens, summed over queries and over the query heads sharing a KV head, to
    ``scores (B, H_kv, T')`` (T' ≤ T, the tokens added since are zero) → ``(B, H_kv, T)``."""
    batch, query_heads, queries, length = probs.shape
    if length != stored or query_heads % kv_heads:
        raise UsageError(
            f"attention probabilities over {length} tokens and {query_heads} heads do not "
            f"match a cache layer of {stored} tokens and {kv_heads} KV heads"
        )
    grouped = probs.float().view(batch, kv_heads, query_heads // kv_heads, queries, length)
    received = grouped.sum(dim=(2, 3))  # (B, H_kv, T)
    if scores is None:
        return received
    return nn.functional.pad(scores, (0, length - scores.shape[-1])) + received
