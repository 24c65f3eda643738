"""Decoding over a static KV cache with a compiled step, for CUDA devices.

On a GPU a one-token decode step or a short prefill is bound by kernel launches, not by
the weights it reads. Here the model runs over a transformers ``StaticCache`` (fixed
shapes, fixed addresses, allocated before anything is compiled), compiled so that each
step replays as CUDA graphs. Prefills are right-padded to a few bucket lengths
(:func:`prefill_bucket`), so a session's short incremental prefill reuses a graph too;
the padded positions are written past the real tokens, masked by causality, and given
back at once (the next token overwrites them).

Only CUDA selects this (:func:`prefers_static_decoding`); elsewhere the same class runs
eagerly, which is how the CPU tests check its cache bookkeeping. The CPU engine keeps
``memlens/engine/decoding.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from memlens.engine.decoding import ForwardCall
from memlens.errors import UsageError

GRAPH_BACKENDS: dict[str, dict[str, Any]] = {
    "cudagraphs": {"backend": "cudagraphs"},
    "inductor": {"mode": "reduce-overhead"},
}
"""How a step is compiled: ``cudagraphs`` records the eager kernels as CUDA graphs (built in
seconds); ``inductor`` also fuses them (``torch.compile(mode="reduce-overhead")``, minutes
for a large model)."""
SMALLEST_BUCKET = 16
"""Prefills shorter than this many tokens are padded up to it."""
LayerKV = tuple[torch.Tensor, torch.Tensor]


def prefers_static_decoding(device: torch.device) -> bool:
    """Whether the engine should decode with :class:`StaticDecoder` on ``device``."""
    return device.type == "cuda"


def prefill_bucket(tokens: int, room: int) -> int:
    """The padded length a prefill of ``tokens`` runs at: the next power of two from
    :data:`SMALLEST_BUCKET`, or ``tokens`` itself where the bucket would not fit the
    ``room`` left in the cache (then it runs unpadded, as a graph of its own)."""
    if tokens < 1:
        raise UsageError("a prefill needs at least one token")
    if tokens > room:
        raise UsageError(f"{tokens} tokens do not fit the {room} positions left in the cache")
    bucket = max(SMALLEST_BUCKET, 1 << (tokens - 1).bit_length())
    return bucket if bucket <= room else tokens


class StaticDecoder:
    """One conversation (or batch) over a static cache of ``max_tokens`` positions."""

    def __init__(
        self,
        model: nn.Module,
        max_tokens: int,
        compiled: bool | None = None,
        backend: str = "cudagraphs",
    ) -> None:
        from memlens._transformers import transformers_module

        self.model = model
        self.max_tokens = max_tokens
        self.device = next(iter(model.parameters())).device
        self.cache: Any = transformers_module().StaticCache(
            config=model.config, max_cache_len=max_tokens
        )
        self.seen = 0
        """Tokens the cache holds (the next token's position)."""
        use_graphs = prefers_static_decoding(self.device) if compiled is None else compiled
        self._forward = ForwardCall.of(model)
        runner: Callable[..., Any] = model
        if use_graphs:
            runner = torch.compile(model, dynamic=False, **GRAPH_BACKENDS[backend])
        self._run = runner

    def load(self, layers: Sequence[LayerKV]) -> None:
        """Start from a history: per layer keys and values ``(B, H, T, D)`` (a session's
        cache), copied into the static tensors."""
        keys = layers[0][0]
        batch, tokens = keys.shape[0], keys.shape[2]  # (B, H, T, D)
        if tokens > self.max_tokens:
            raise UsageError(f"a history of {tokens} tokens exceeds the {self.max_tokens} held")
        self._allocate(batch, keys.dtype)
        for layer, (k, v) in zip(self.cache.layers, layers, strict=True):
            layer.keys[:, :, :tokens].copy_(k)  # (B, H, T, D) into (B, H, max, D)
            layer.values[:, :, :tokens].copy_(v)
            layer.cumulative_length.fill_(tokens)
        self.seen = tokens

    def prefill(self, ids: torch.Tensor) -> torch.Tensor:
        """Feed ``ids (B, t)`` after what the cache holds → next-token logits ``(B, V)``."""
        tokens = ids.shape[1]
        self._allocate(ids.shape[0], self._dtype())
        bucket = prefill_bucket(tokens, self.max_tokens - self.seen)
        padded = nn.functional.pad(ids, (0, bucket - tokens))  # (B, bucket), pad id 0
        last = torch.tensor([tokens - 1], device=ids.device)  # the last real position
        logits = self._call(padded, last)  # (B, 1, V)
        self._give_back(bucket - tokens)
        self.seen += tokens
        return logits[:, -1]

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feed one token per row ``(B,)`` → next-token logits ``(B, V)``."""
        if self.seen >= self.max_tokens:
            raise UsageError(f"the static cache is full ({self.max_tokens} tokens)")
        self._allocate(tokens.shape[0], self._dtype())
        logits = self._call(tokens[:, None], None)  # (B, 1, V)
        self.seen += 1
        return logits[:, -1]

    def _dtype(self) -> torch.dtype:
        """The KV dtype: that of the embeddings (compressed layers hold other dtypes)."""
        model: Any = self.model
        dtype: torch.dtype = model.get_input_embeddings().weight.dtype
        return dtype

    def _allocate(self, batch: int, dtype: torch.dtype) -> None:
        """Allocate the static tensors once, eagerly (outside any compiled region, so their
        addresses are marked static and graphs may write to them)."""
        if self.cache.layers[0].is_initialized:
            return
        config: Any = self.model.config
        text = config.get_text_config(decoder=True)
        heads = getattr(text, "num_key_value_heads", None) or text.num_attention_heads
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        self.cache.early_initialization(batch, heads, head_dim, dtype, self.device)

    def _call(self, ids: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        kwargs: dict[str, Any] = {self._forward.cache_argument: self.cache, "use_cache": True}
        if self._forward.keep_last:
            kwargs["logits_to_keep"] = 1 if keep is None else keep
        out = self._run(input_ids=ids, **kwargs)
        logits: torch.Tensor = out.logits.clone()  # a graph replay reuses its output buffer
        return logits

    def _give_back(self, padding: int) -> None:
        """Forget the padded positions a bucketed prefill wrote (the next tokens overwrite
        them; until then causality masks them)."""
        if padding:
            for layer in self.cache.layers:
                layer.crop(-padding)
