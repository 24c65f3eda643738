"""What compression costs in quality: perplexity of a causal LM on held-out token ids,
and the cosine between sentence embeddings before and after (encoder models).

The per-layer relative output error on calibration activations lives beside the plan
that uses it, in ``memlens/engine/weights/sensitivity.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from memlens.errors import UsageError


def perplexity(
    model: nn.Module,
    ids: torch.Tensor,
    window: int = 256,
    on_progress: Callable[[int, int], None] | None = None,
) -> float:
    """``exp`` of the mean next-token negative log-likelihood over ``ids (T,)``, scored in
    consecutive windows of ``window`` tokens (each predicts its tokens 2…window)."""
    flat = ids.reshape(-1)
    if flat.numel() < 2:
        raise UsageError("perplexity needs at least two tokens of text")
    starts = range(0, flat.numel() - 1, window)
    total_nll = 0.0
    counted = 0
    with torch.no_grad():
        for done, start in enumerate(starts):
            chunk = flat[start : start + window][None]  # (1, w)
            if chunk.shape[1] < 2:
                break
            logits = model(input_ids=chunk).logits.float()  # (1, w, V)
            nll = nn.functional.cross_entropy(
                logits[0, :-1], chunk[0, 1:], reduction="sum"
            )  # predictions for tokens 2…w
            total_nll += float(nll)
            counted += chunk.shape[1] - 1
            if on_progress:
                on_progress(done + 1, len(starts))
    return math.exp(total_nll / counted)


def sentence_embeddings(model: nn.Module, tokenizer: Any, sentences: Sequence[str]) -> torch.Tensor:
    """Mean-pooled, L2-normalised embeddings ``(n, d)`` (the sentence-transformers recipe
    of all-MiniLM-L6-v2)."""
    batch = tokenizer(list(sentences), padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state.float()  # (n, T, d)
    mask = batch["attention_mask"][..., None].float()  # (n, T, 1)
    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)  # (n, d)
    return nn.functional.normalize(pooled, dim=-1)


def mean_cosine(before: torch.Tensor, after: torch.Tensor) -> float:
    """Mean cosine similarity of matching rows of two ``(n, d)`` embedding matrices."""
    return float(nn.functional.cosine_similarity(before.float(), after.float(), dim=-1).mean())
