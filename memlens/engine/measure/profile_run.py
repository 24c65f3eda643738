"""A measured profile of one short generation (``memlens profile`` and the worker's
``memlens.profile``): per block, the bytes held (compressed formats included), the KV
cache it filled (the compressed cache's exact bytes when a KV config is given) and its
largest output; for the run, the tensor-memory peak."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from memlens._transformers import transformers_module
from memlens.engine.decoding import DecodeStats, stream
from memlens.engine.kv.cache import CompressedKVCache, track_attention
from memlens.engine.kv.config import KVCacheConfig
from memlens.engine.loading import LoadedModel
from memlens.profiler.measure import measure_layers, measure_peak, module_bytes

__all__ = ["MeasuredLayer", "ProfileRun", "profile_run"]


@dataclass(frozen=True)
class MeasuredLayer:
    """One block of a profiled run, in bytes."""

    name: str
    bytes: int
    """Parameters and buffers held."""
    params: int
    """Parameters (compressed weights are buffers, so they do not count here)."""
    kv_cache_bytes: int
    """The KV cache this decoder layer held at the end of the run (0 for other blocks)."""
    activation_bytes: int
    """Its largest output during the run."""


@dataclass(frozen=True)
class ProfileRun:
    """What one profiled run measured."""

    layers: tuple[MeasuredLayer, ...]
    weights_bytes: int
    peak_bytes: int
    prompt_tokens: int
    new_tokens: int
    batch: int
    device: str
    decode_tokens_per_s: float | None
    """New tokens per second per sequence, timed in a second decode of the same prompt
    without the profiler's hooks (they slow every block call); None for an encoder."""
    kv_cache: str | None = None
    """The compressed KV cache's settings (``parse_kv`` syntax); None for transformers'
    ``DynamicCache``."""

    def to_json(self) -> dict[str, Any]:
        """The ``measured`` part of the profile report."""
        return asdict(self)


def _cache_bytes_by_layer(cache: Any) -> list[int]:
    if isinstance(cache, CompressedKVCache):
        return [held.total for held in cache.bytes_by_layer()]
    sizes = []
    for layer in getattr(cache, "layers", []):
        held = [getattr(layer, "keys", None), getattr(layer, "values", None)]
        sizes.append(sum(t.numel() * t.element_size() for t in held if isinstance(t, torch.Tensor)))
    return sizes


def profile_run(
    loaded: LoadedModel,
    batch: int,
    prompt_tokens: int,
    new_tokens: int,
    on_progress: Callable[[str, float], None] | None = None,
    kv: KVCacheConfig | None = None,
) -> ProfileRun:
    """Prefill ``batch × prompt_tokens`` random tokens and decode ``new_tokens`` (an
    encoder runs one forward pass), measuring as it goes; ``kv`` decodes with the
    compressed KV cache instead of transformers' ``DynamicCache`` (with H2O eviction the
    model runs with eager attention, which H2O needs, so the peak includes its
    attention probabilities)."""
    model = loaded.model
    report = on_progress or (lambda message, percent: None)
    vocab = int(getattr(getattr(model, "config", None), "vocab_size", None) or 2)
    ids = torch.randint(
        0, vocab, (batch, prompt_tokens), generator=torch.Generator().manual_seed(0)
    )
    stats = DecodeStats()
    config = getattr(model, "config", None)

    def make_cache() -> Any:
        if kv is not None and loaded.causal:
            return CompressedKVCache(kv, config)
        return transformers_module().DynamicCache(config=config)

    cache = make_cache()

    def run() -> None:
        if not loaded.causal:
            with torch.no_grad():
                model(input_ids=ids)
            return
        # H2O ranks tokens by attention probabilities (a no-op for other caches)
        compressed = isinstance(cache, CompressedKVCache)
        tracking = track_attention(model, cache) if compressed else nullcontext()
        with tracking:
            for step in stream(model, ids, new_tokens, cache=cache, stats=stats):
                done = stats.new_tokens
                report(f"Generating token {done}/{new_tokens}", 30 + 60 * done / new_tokens)
                del step

    report("Prefilling", 30)
    resident = module_bytes(model)
    (_, peak), layers = measure_layers(model, lambda: measure_peak(run, resident_bytes=resident))
    kv_bytes = _cache_bytes_by_layer(cache) if loaded.causal else []
    decoder_layers = [layer for layer in layers if layer.name.split(".")[-1].isdigit()]
    kv_by_name = {
        layer.name: kv_bytes[i] for i, layer in enumerate(decoder_layers) if i < len(kv_bytes)
    }
    measured = tuple(
        MeasuredLayer(
            layer.name,
            layer.weight_bytes,
            _params(model.get_submodule(layer.name)),
            kv_by_name.get(layer.name, 0),
            layer.activation_bytes,
        )
        for layer in layers
    )
    speed = None
    if loaded.causal:
        report("Timing the decode without the profiler's hooks", 90)
        speed = _decode_speed(model, ids, new_tokens, make_cache())
    return ProfileRun(
        measured,
        peak.resident_bytes,
        peak.peak_bytes,
        prompt_tokens,
        stats.new_tokens if loaded.causal else 0,
        batch,
        peak.device,
        speed,
        kv.label() if kv is not None and loaded.causal else None,
    )


def _decode_speed(model: nn.Module, ids: torch.Tensor, new_tokens: int, cache: Any) -> float:
    """Decode tokens/s of the same prompt with no hooks installed (the measured run's
    hooks read every block's output, which costs more than the block on small models)."""
    stats = DecodeStats()
    tracking = track_attention(model, cache) if isinstance(cache, CompressedKVCache) else None
    with tracking or nullcontext():
        for _ in stream(model, ids, new_tokens, cache=cache, stats=stats):
            pass
    return stats.decode_tokens_per_s


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
