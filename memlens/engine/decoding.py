"""Incremental decoding on top of a model's forward and a transformers cache.

One prefill of the prompt fills the cache; each step then feeds only the last token.
:func:`stream` yields each step's tokens as they are chosen, so callers can print them
while the model works; :func:`generate` collects them.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from memlens.errors import UsageError


@dataclass(frozen=True)
class Sampling:
    """Sampled decoding; greedy decoding is ``sampling=None``."""

    temperature: float = 1.0
    """Logits are divided by this (> 0)."""
    top_k: int | None = None
    """Keep only the k most likely tokens."""
    top_p: float | None = None
    """Keep the smallest set of tokens whose probability reaches p (nucleus)."""
    seed: int | None = None
    """Seed of the sampler's own generator, for reproducible samples."""

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise UsageError(f"temperature must be positive, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise UsageError(f"top_k must be at least 1, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise UsageError(f"top_p must be in (0, 1], got {self.top_p}")


@dataclass
class DecodeStats:
    """Filled in by :func:`stream` as it runs (seconds are model time only)."""

    prompt_tokens: int = 0
    new_tokens: int = 0
    prefill_s: float = 0.0
    decode_s: float = 0.0

    @property
    def prefill_tokens_per_s(self) -> float:
        """Prompt tokens (all sequences) per second of prefill."""
        return self.prompt_tokens / self.prefill_s if self.prefill_s else 0.0

    @property
    def decode_tokens_per_s(self) -> float:
        """New tokens per sequence per second of decoding (after the first token)."""
        steps = self.new_tokens - 1
        return steps / self.decode_s if steps > 0 and self.decode_s else 0.0


def pick_tokens(
    logits: torch.Tensor, sampling: Sampling | None, generator: torch.Generator | None
) -> torch.Tensor:
    """``logits (B, V)`` → chosen token ids ``(B,)``."""
    if sampling is None:
        return logits.argmax(dim=-1)
    scores = logits.float() / sampling.temperature  # (B, V)
    if sampling.top_k is not None and sampling.top_k < scores.shape[-1]:
        kth = torch.topk(scores, sampling.top_k, dim=-1).values[:, -1:]  # (B, 1)
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if sampling.top_p is not None:
        ordered, order = torch.sort(scores, dim=-1, descending=True)  # (B, V)
        probs = ordered.softmax(dim=-1)
        outside = probs.cumsum(dim=-1) - probs >= sampling.top_p  # mass before it reached p
        scores = scores.scatter(-1, order, ordered.masked_fill(outside, float("-inf")))
    probs = scores.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


@dataclass(frozen=True)
class ForwardCall:
    """How this model's forward takes a cache: transformers 5 names the argument
    ``cache`` (older signatures ``past_key_values``); ``logits_to_keep`` spares every
    step the full sequence of vocabulary logits."""

    cache_argument: str
    keep_last: bool

    @classmethod
    def of(cls, model: nn.Module) -> ForwardCall:
        """The call that fits ``model``'s forward signature."""
        parameters = inspect.signature(model.forward).parameters
        cache_argument = "cache" if "cache" in parameters else "past_key_values"
        return cls(cache_argument, "logits_to_keep" in parameters)

    def __call__(self, model: nn.Module, ids: torch.Tensor, cache: Any) -> torch.Tensor:
        """Next-token logits ``(B, V)`` after ``ids (B, t)``."""
        kwargs: dict[str, Any] = {self.cache_argument: cache, "use_cache": True}
        if self.keep_last:
            kwargs["logits_to_keep"] = 1
        logits: torch.Tensor = model(input_ids=ids, **kwargs).logits
        return logits[:, -1]


def _batched(input_ids: torch.Tensor) -> torch.Tensor:
    return input_ids[None] if input_ids.dim() == 1 else input_ids  # (T,) → (1, T)


def stream(
    model: nn.Module,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    sampling: Sampling | None = None,
    eos_token_id: int | None = None,
    cache: Any = None,
    stats: DecodeStats | None = None,
) -> Iterator[torch.Tensor]:
    """Yield the next tokens ``(B,)`` of prompts ``input_ids (B, T)`` (or ``(T,)``), up to
    ``max_new_tokens`` steps or until every sequence has produced ``eos_token_id``.

    ``cache`` is any transformers ``Cache`` (a fresh ``DynamicCache`` by default).
    """
    from memlens._transformers import transformers_module

    ids = _batched(input_ids)  # (B, T)
    if ids.numel() == 0:
        raise UsageError("the prompt is empty: give at least one token")
    if max_new_tokens < 1:
        raise UsageError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if cache is None:
        cache = transformers_module().DynamicCache(config=getattr(model, "config", None))
    forward = ForwardCall.of(model)
    stats = stats if stats is not None else DecodeStats()
    stats.prompt_tokens = ids.numel()
    generator = None
    if sampling is not None and sampling.seed is not None:
        generator = torch.Generator(device=ids.device).manual_seed(sampling.seed)
    finished = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
    with torch.no_grad():
        start = time.perf_counter()
        logits = forward(model, ids, cache)
        stats.prefill_s = time.perf_counter() - start
        for step in range(max_new_tokens):
            tokens = pick_tokens(logits, sampling, generator)  # (B,)
            if eos_token_id is not None:
                tokens = tokens.masked_fill(finished, eos_token_id)
                finished |= tokens == eos_token_id
            stats.new_tokens = step + 1
            yield tokens
            if bool(finished.all()) or step + 1 == max_new_tokens:
                return
            start = time.perf_counter()
            logits = forward(model, tokens[:, None], cache)
            stats.decode_s += time.perf_counter() - start


def generate(
    model: nn.Module,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    sampling: Sampling | None = None,
    eos_token_id: int | None = None,
    cache: Any = None,
    stats: DecodeStats | None = None,
) -> torch.Tensor:
    """The prompts followed by their new tokens, ``(B, T + new)``."""
    ids = _batched(input_ids)  # (B, T)
    steps = list(stream(model, ids, max_new_tokens, sampling, eos_token_id, cache, stats))
    return torch.cat([ids, torch.stack(steps, dim=1)], dim=1)
