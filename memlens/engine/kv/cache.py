"""A transformers ``Cache`` that stores keys and values in INT8/INT4 (KIVI-style) and can
evict tokens under a budget (StreamingLLM, H2O).

Per layer, the most recent tokens stay in full precision (the residual); once
``residual_tokens + group_size`` or more have piled up, the oldest whole blocks of
``group_size`` tokens are quantized: keys per channel (a group spans ``group_size`` tokens
of one channel), values per token (a group spans ``group_size`` channels of one token, or
the whole head when it is narrower). 4-bit values are packed two per byte; scales and
minimums are float16 until a block's exceed float16's range (±65504), from which point
that layer keeps them in float32 (``CompressedKVLayer.scale_dtype``). Each update
dequantizes the history once, straight into the tensor it returns to attention; nothing
dequantized is kept.

Works with ``model.generate(cache=cache)`` (``past_key_values=`` in older transformers),
with ``model(input_ids, cache=cache, use_cache=True)`` called repeatedly (multi-turn
appends) and with :func:`memlens.engine.decoding.stream`. Positions keep counting the
tokens seen, evicted ones included. Batches must be unpadded (every row the same length).
H2O eviction ranks tokens by the attention they received: run the model inside
:func:`track_attention` (defined here, beside the cache it feeds); which tokens a policy
keeps is the plain arithmetic of ``eviction.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

import torch
from torch import nn
from transformers.cache_utils import Cache, CacheLayerMixin

from memlens.engine.kv.config import HeavyHitterEviction, KVCacheConfig
from memlens.engine.kv.eviction import accumulate_attention, kept_indices, kept_length
from memlens.errors import UsageError
from memlens.kernels.formats import pack_int4, quantize_groups, quantize_token_groups
from memlens.kernels.kv import dequantize_keys_into, dequantize_values_into

__all__ = ["CompressedKVCache", "CompressedKVLayer", "KVLayerBytes", "track_attention"]

_SCALE_DTYPE = torch.float16
_SCALE_MAX = torch.finfo(_SCALE_DTYPE).max


@dataclass(frozen=True)
class KVLayerBytes:
    """Bytes one cache layer holds, by what they store."""

    quantized: int
    """Bytes of integer keys and values (4-bit ones packed two per byte)."""
    scales: int
    """Bytes of their scales and minimums (float16, or float32 once float16 overflows)."""
    residual: int
    """Bytes of the recent tokens in full precision (all tokens when ``bits`` is None)."""
    eviction: int
    """Bytes of the accumulated attention per token (H2O only)."""

    @property
    def total(self) -> int:
        """All of the above, in bytes."""
        return self.quantized + self.scales + self.residual + self.eviction


def _nbytes(*tensors: torch.Tensor | None) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


@dataclass(frozen=True)
class _Blocks:
    """The quantized history of one layer (Tq tokens, whole blocks of g)."""

    key_q: torch.Tensor  # (B, H, Tq, D) uint8, or (B, H, Tq, D/2) packed 4-bit
    key_scale: torch.Tensor  # (B, H, Tq/g, D) scale_dtype
    key_low: torch.Tensor  # (B, H, Tq/g, D) scale_dtype
    value_q: torch.Tensor  # (B, H, Tq, D) uint8, or (B, H, Tq, D/2) packed 4-bit
    value_scale: torch.Tensor  # (B, H, Tq, D/gv) scale_dtype
    value_low: torch.Tensor  # (B, H, Tq, D/gv) scale_dtype

    def parts(self) -> tuple[torch.Tensor, ...]:
        return tuple(getattr(self, item.name) for item in fields(self))

    def data_bytes(self) -> int:
        return _nbytes(self.key_q, self.value_q)

    def scales(self) -> tuple[torch.Tensor, ...]:
        return self.key_scale, self.key_low, self.value_scale, self.value_low

    def scale_bytes(self) -> int:
        return _nbytes(*self.scales())

    def map(self, change: Callable[[torch.Tensor], torch.Tensor]) -> _Blocks:
        """The same blocks, every tensor changed alike (batch reorders, appends)."""
        return _Blocks(*(change(part) for part in self.parts()))


class CompressedKVLayer(CacheLayerMixin):  # type: ignore[no-untyped-call]  # untyped in transformers
    """One decoder layer's keys and values: quantized history plus full-precision
    residual (``self.keys``/``self.values``, ``(B, H, r, D)``)."""

    is_compileable = False
    is_croppable = False
    is_sliding = False

    def __init__(self, config: KVCacheConfig) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.config = config
        self.value_group = config.group_size
        self.seen = 0
        """Tokens that went through this layer (evicted ones included)."""
        self.quantized_tokens = 0
        self.blocks: _Blocks | None = None
        self.scale_dtype = _SCALE_DTYPE
        """float16, or float32 from the first block whose scales or minimums overflow it."""
        self.scores: torch.Tensor | None = None  # (B, H, T) float32, H2O only

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        """Empty residual of the states' batch, heads, head size, dtype and device."""
        _check_states(key_states, value_states)
        head_dim = key_states.shape[-1]
        self.value_group = min(self.config.group_size, head_dim)
        if head_dim % self.value_group:
            raise UsageError(
                f"head size {head_dim} is not a multiple of the KV group size "
                f"{self.config.group_size}: pick a group size that divides it"
            )
        if self.config.bits == 4 and head_dim % 2:
            raise UsageError(f"4-bit KV packs two values per byte: head size {head_dim} is odd")
        self.device = key_states.device
        self.dtype = key_states.dtype
        self.keys = key_states[..., :0, :].clone()  # (B, H, 0, D)
        self.values = value_states[..., :0, :].clone()
        self.is_initialized = True

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store ``(B, H, t, D)`` new keys and values; return every kept token's
        ``(B, H, T, D)`` for attention (history dequantized, then residual, then new)."""
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        _check_states(key_states, value_states)
        held, _ = self._residual()
        if key_states.shape[:2] != held.shape[:2] or key_states.shape[-1] != held.shape[-1]:
            raise UsageError(
                f"keys of shape {tuple(key_states.shape)} do not fit a cache layer holding "
                f"{tuple(held.shape)}: one cache serves one model and one batch"
            )
        self._evict()
        keys, values = self._materialize(key_states, value_states)  # (B, H, T, D)
        self.seen += key_states.shape[-2]
        self._append(key_states, value_states)
        return keys, values

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        """``(kv_length, kv_offset)``: the tokens the next update returns, and where the
        first of them sits among the tokens seen."""
        kept = kept_length(self.config.eviction, self.stored_tokens(), self.seen, self._slack())
        return kept + query_length, self.seen - kept

    def get_seq_length(self) -> int:
        """Tokens seen, evicted ones included (the next token's position)."""
        return self.seen

    def get_max_length(self) -> int:
        """No maximum."""
        return -1

    def stored_tokens(self) -> int:
        """Tokens held: quantized plus residual."""
        return self.quantized_tokens + (self._residual()[0].shape[-2] if self.is_initialized else 0)

    def bytes_held(self) -> KVLayerBytes:
        """Exact bytes of every tensor this layer holds, by kind."""
        blocks = self.blocks
        return KVLayerBytes(
            quantized=0 if blocks is None else blocks.data_bytes(),
            scales=0 if blocks is None else blocks.scale_bytes(),
            residual=_nbytes(self.keys, self.values),
            eviction=_nbytes(self.scores),
        )

    def nbytes(self) -> int:
        """Bytes this layer holds."""
        return self.bytes_held().total

    def observe_attention(self, probs: torch.Tensor) -> None:
        """Accumulate attention probabilities ``(B, H_q, q, T)`` of the last update (what
        H2O ranks tokens by); ignored under other policies."""
        if isinstance(self.config.eviction, HeavyHitterEviction) and self.is_initialized:
            kv_heads = self._residual()[0].shape[1]
            self.scores = accumulate_attention(self.scores, probs, kv_heads, self.stored_tokens())

    def reset(self) -> None:
        """Drop everything; the next update starts afresh."""
        self.keys = self.values = self.blocks = self.scores = None
        self.seen = self.quantized_tokens = 0
        self.scale_dtype = _SCALE_DTYPE
        self.is_initialized = False

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Reorder the batch for beam search."""
        self._map(lambda t: t.index_select(0, beam_idx.to(t.device)))

    def batch_repeat_interleave(self, repeats: int) -> None:
        """Repeat each batch row ``repeats`` times."""
        self._map(lambda t: t.repeat_interleave(repeats, dim=0))

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep only these batch rows."""
        self._map(lambda t: t[indices])

    def crop(self, tokens_to_remove: int) -> None:
        """Not supported: quantized blocks cannot give tokens back exactly."""
        raise UsageError("the compressed KV cache cannot be cropped")

    def _map(self, change: Callable[[torch.Tensor], torch.Tensor]) -> None:
        if not self.is_initialized:  # nothing stored yet (layers made up front)
            return
        self.blocks = None if self.blocks is None else self.blocks.map(change)
        self.keys, self.values = (change(part) for part in self._residual())
        self.scores = None if self.scores is None else change(self.scores)

    def _residual(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.keys is None or self.values is None:
            raise UsageError("this KV cache layer has not stored anything yet")
        return self.keys, self.values

    def _slack(self) -> int:
        return 0 if self.config.bits is None else self.config.group_size

    def _append(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        held_keys, held_values = self._residual()
        keys = torch.cat([held_keys, key_states], dim=-2)  # (B, H, r + t, D)
        values = torch.cat([held_values, value_states], dim=-2)
        group = self.config.group_size
        ready = (keys.shape[-2] - self.config.residual_tokens) // group * group
        if self.config.bits is not None and ready > 0:
            self._quantize(keys[..., :ready, :], values[..., :ready, :])
            keys = keys[..., ready:, :].clone()  # a copy frees the quantized part
            values = values[..., ready:, :].clone()
        self.keys, self.values = keys, values

    def _quantize(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Move ``(B, H, n, D)`` full blocks into the quantized history."""
        bits = self.config.bits or 8
        key_q, key_scale, key_low = quantize_token_groups(keys, bits, self.config.group_size)
        value_q, value_scale, value_low = quantize_groups(values, bits, self.value_group)
        if bits == 4:
            key_q, value_q = pack_int4(key_q), pack_int4(value_q)  # (B, H, n, D/2)
        scales = (key_scale, key_low, value_scale, value_low)
        if self.scale_dtype == _SCALE_DTYPE and _overflows(scales):
            self.scale_dtype = torch.float32
            if self.blocks is not None:
                self.blocks = self._widened(self.blocks)
        key_scale, key_low, value_scale, value_low = (s.to(self.scale_dtype) for s in scales)
        new = _Blocks(key_q, key_scale, key_low, value_q, value_scale, value_low)
        held = self.blocks
        self.blocks = (
            new
            if held is None
            else _Blocks(
                *(torch.cat(pair, dim=-2) for pair in zip(held.parts(), new.parts(), strict=True))
            )
        )
        self.quantized_tokens += keys.shape[-2]

    @staticmethod
    def _widened(blocks: _Blocks) -> _Blocks:
        """The same blocks with float32 scales and minimums."""
        key_scale, key_low, value_scale, value_low = (s.float() for s in blocks.scales())
        return _Blocks(blocks.key_q, key_scale, key_low, blocks.value_q, value_scale, value_low)

    def _materialize(
        self, key_states: torch.Tensor, value_states: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every stored token followed by ``(B, H, t, D)`` new ones, as ``(B, H, T, D)``
        keys and values in the model dtype: the history is dequantized straight into the
        result (``memlens.kernels.kv``)."""
        held_keys, held_values = self._residual()
        batch, heads, residual, dim = held_keys.shape
        quantized = self.quantized_tokens
        total = quantized + residual + key_states.shape[-2]
        keys = held_keys.new_empty(batch, heads, total, dim)  # (B, H, T, D)
        values = held_values.new_empty(batch, heads, total, dim)
        keys[..., quantized : quantized + residual, :] = held_keys
        values[..., quantized : quantized + residual, :] = held_values
        keys[..., quantized + residual :, :] = key_states
        values[..., quantized + residual :, :] = value_states
        if quantized:
            self._dequantize_into(keys[..., :quantized, :], values[..., :quantized, :])
        return keys, values

    def _dequantize_into(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Write the quantized history into ``(B, H, Tq, D)`` views of the result."""
        blocks = self.blocks
        if blocks is None:
            return
        bits = self.config.bits
        dequantize_keys_into(
            keys, blocks.key_q, blocks.key_scale, blocks.key_low, bits, self.config.group_size
        )
        dequantize_values_into(
            values, blocks.value_q, blocks.value_scale, blocks.value_low, bits, self.value_group
        )

    def _evict(self) -> None:
        policy = self.config.eviction
        stored = self.stored_tokens()
        keep = kept_length(policy, stored, self.seen, self._slack())
        if policy is None or keep == stored:
            return
        index = kept_indices(policy, keep, stored, self.scores, self.device)
        held_keys, held_values = self._residual()
        keys, values = self._materialize(held_keys[..., :0, :], held_values[..., :0, :])
        if index.dim() == 1:
            keys, values = keys[..., index, :], values[..., index, :]  # (B, H, keep, D)
        else:
            gather = index[..., None].expand(-1, -1, -1, keys.shape[-1])  # (B, H, keep, D)
            keys, values = keys.gather(-2, gather), values.gather(-2, gather)
        scores = None if self.scores is None else _keep_scores(self.scores, index)
        seen = self.seen
        self.reset()
        self.lazy_initialization(keys, values)
        self.seen, self.scores = seen, scores
        self._append(keys, values)


def _check_states(key_states: torch.Tensor, value_states: torch.Tensor) -> None:
    if key_states.dim() != 4 or key_states.shape != value_states.shape:
        raise UsageError(
            "the compressed KV cache takes keys and values of one shape (B, H, T, D), "
            f"got {tuple(key_states.shape)} and {tuple(value_states.shape)}"
        )


def _overflows(scales: tuple[torch.Tensor, ...]) -> bool:
    """Whether any float32 scale or minimum lies beyond float16's range: one reduction and
    one host sync per quantized block (every ``group_size`` tokens per layer) on an
    accelerator; meta tensors (shape-only runs) hold no values and never overflow."""
    if scales[0].is_meta:
        return False
    largest = torch.stack([s.abs().amax() for s in scales])  # (4,) on the scales' device
    return bool(largest.amax() > _SCALE_MAX)


def _keep_scores(scores: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    if index.dim() == 1:
        return scores[..., index]  # (B, H, keep)
    return scores.gather(-1, index)


class CompressedKVCache(Cache):
    """A transformers ``Cache`` of :class:`CompressedKVLayer` s, one per decoder layer.

    ``model_config`` (the model's ``config``) creates the layers up front and rejects
    models with sliding-window layers; without it layers are created as the model
    reaches them.
    """

    def __init__(self, config: KVCacheConfig | None = None, model_config: Any = None) -> None:
        self.config = config if config is not None else KVCacheConfig()
        if model_config is None:
            # transformers calls the replicator with no arguments; a partial is enough
            replicate: Any = partial(CompressedKVLayer, self.config)
            super().__init__(layer_class_to_replicate=replicate)
            return
        text = model_config.get_text_config(decoder=True)
        kinds = set(getattr(text, "layer_types", None) or ["full_attention"])
        if kinds != {"full_attention"} or getattr(text, "sliding_window", None):
            raise UsageError(
                "the compressed KV cache serves full-attention layers only; this model has "
                + ", ".join(sorted(kinds - {"full_attention"}) or ["a sliding window"])
            )
        layers: list[Any] = [CompressedKVLayer(self.config) for _ in range(text.num_hidden_layers)]
        super().__init__(layers=layers)

    def layer(self, index: int) -> CompressedKVLayer:
        """The ``index``-th layer (created by the model's first forward when the cache was
        made without ``model_config``)."""
        found = self.layers[index] if index < len(self.layers) else None
        if not isinstance(found, CompressedKVLayer):
            raise UsageError(f"the KV cache has no layer {index}: it holds {len(self.layers)}")
        return found

    def bytes_by_layer(self) -> list[KVLayerBytes]:
        """Exact bytes each layer holds, in layer order."""
        return [self.layer(index).bytes_held() for index in range(len(self.layers))]

    def nbytes(self) -> int:
        """Bytes all layers hold."""
        return sum(item.total for item in self.bytes_by_layer())


@contextmanager
def track_attention(model: nn.Module, cache: CompressedKVCache) -> Iterator[None]:
    """Within this block, every attention layer of ``model`` reports its attention
    probabilities to its layer of ``cache`` (what H2O eviction ranks tokens by). The
    model runs with eager attention meanwhile (SDPA never materialises the
    probabilities); its attention implementation and hooks are restored on exit. A
    cache without H2O eviction needs no attention: then this does nothing."""
    if not isinstance(cache.config.eviction, HeavyHitterEviction):
        yield
        return
    attention = [
        module
        for name, module in model.named_modules()
        if name.endswith("self_attn") and isinstance(getattr(module, "layer_idx", None), int)
    ]
    if not attention:
        raise UsageError(f"{type(model).__name__} has no self_attn layers to track")
    config: Any = getattr(model, "config", None)
    previous = getattr(config, "_attn_implementation", None)
    setter = getattr(model, "set_attn_implementation", None)
    if setter is not None and previous != "eager":
        setter("eager")

    def report(module: nn.Module, args: Any, output: Any) -> None:
        probs = output[1] if isinstance(output, tuple) and len(output) > 1 else None
        index = module.layer_idx
        if isinstance(probs, torch.Tensor) and isinstance(index, int):
            cache.layer(index).observe_attention(probs)

    handles = [module.register_forward_hook(report) for module in attention]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        if setter is not None and previous not in (None, "eager"):
            setter(previous)
