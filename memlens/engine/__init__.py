"""Compressed inference: INT8/INT4/low-rank weights, per-layer plans, checkpoints,
incremental decoding, the compressed KV cache, multi-turn sessions and the measurements
that check what compression costs.

Names are imported on first use (PEP 562): ``import memlens.engine`` imports neither torch
nor transformers, so the CLI and the worker pay for them only when they run a model.

- ``weights/``: weight configs, compressed Linear layers, ``compress_``, ``auto`` plans,
  checkpoints;
- ``kv/``: the KV cache config, the compressed cache and its eviction policies;
- ``sessions/``: the chat engine and its hot/warm/cold session store;
- ``measure/``: perplexity, embedding cosine, speed, the measured profile run;
- ``decoding.py`` (``generate``, ``stream``: a module named ``generate`` would shadow the
  lazily imported function of that name once imported), ``static_decoding.py`` (a static
  cache and CUDA-graph steps, for CUDA), ``loading.py``, ``tokens.py``, ``compress_job.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memlens._lazy_names import lazy_names

if TYPE_CHECKING:
    from memlens.engine.compress_job import CompressionReport, CompressJob, run_compress
    from memlens.engine.decoding import Sampling, generate, stream
    from memlens.engine.kv.cache import CompressedKVCache, KVLayerBytes, track_attention
    from memlens.engine.kv.config import (
        HeavyHitterEviction,
        KVCacheConfig,
        SinkWindowEviction,
        parse_kv,
    )
    from memlens.engine.loading import load_model
    from memlens.engine.sessions.chat import ChatEngine, Session, TurnStats
    from memlens.engine.sessions.config import SessionStoreConfig, Tier
    from memlens.engine.sessions.store import StoreStats, TierStats
    from memlens.engine.static_decoding import StaticDecoder
    from memlens.engine.weights.checkpoint import load_compressed, save_compressed
    from memlens.engine.weights.config import (
        AutoWeightConfig,
        Int4WeightConfig,
        Int8DynWeightConfig,
        Int8WeightConfig,
        LowRankWeightConfig,
        MixedWeightConfig,
        WeightConfig,
    )
    from memlens.engine.weights.quantize import compress_
    from memlens.engine.weights.sensitivity import plan_auto
    from memlens.errors import SessionBudgetError, SessionLostError, SpillError

_MODULES: dict[str, str] = {
    "AutoWeightConfig": "memlens.engine.weights.config",
    "ChatEngine": "memlens.engine.sessions.chat",
    "CompressJob": "memlens.engine.compress_job",
    "CompressedKVCache": "memlens.engine.kv.cache",
    "CompressionReport": "memlens.engine.compress_job",
    "HeavyHitterEviction": "memlens.engine.kv.config",
    "Int4WeightConfig": "memlens.engine.weights.config",
    "Int8DynWeightConfig": "memlens.engine.weights.config",
    "Int8WeightConfig": "memlens.engine.weights.config",
    "KVCacheConfig": "memlens.engine.kv.config",
    "KVLayerBytes": "memlens.engine.kv.cache",
    "LowRankWeightConfig": "memlens.engine.weights.config",
    "MixedWeightConfig": "memlens.engine.weights.config",
    "Sampling": "memlens.engine.decoding",
    "Session": "memlens.engine.sessions.chat",
    "SessionBudgetError": "memlens.errors",
    "SessionLostError": "memlens.errors",
    "SessionStoreConfig": "memlens.engine.sessions.config",
    "SinkWindowEviction": "memlens.engine.kv.config",
    "SpillError": "memlens.errors",
    "StaticDecoder": "memlens.engine.static_decoding",
    "StoreStats": "memlens.engine.sessions.store",
    "Tier": "memlens.engine.sessions.config",
    "TierStats": "memlens.engine.sessions.store",
    "TurnStats": "memlens.engine.sessions.chat",
    "WeightConfig": "memlens.engine.weights.config",
    "compress_": "memlens.engine.weights.quantize",
    "generate": "memlens.engine.decoding",
    "load_compressed": "memlens.engine.weights.checkpoint",
    "load_model": "memlens.engine.loading",
    "parse_kv": "memlens.engine.kv.config",
    "plan_auto": "memlens.engine.weights.sensitivity",
    "run_compress": "memlens.engine.compress_job",
    "save_compressed": "memlens.engine.weights.checkpoint",
    "stream": "memlens.engine.decoding",
    "track_attention": "memlens.engine.kv.cache",
}
"""Which module owns each public name."""

__all__ = [
    "AutoWeightConfig",
    "ChatEngine",
    "CompressJob",
    "CompressedKVCache",
    "CompressionReport",
    "HeavyHitterEviction",
    "Int4WeightConfig",
    "Int8DynWeightConfig",
    "Int8WeightConfig",
    "KVCacheConfig",
    "KVLayerBytes",
    "LowRankWeightConfig",
    "MixedWeightConfig",
    "Sampling",
    "Session",
    "SessionBudgetError",
    "SessionLostError",
    "SessionStoreConfig",
    "SinkWindowEviction",
    "SpillError",
    "StaticDecoder",
    "StoreStats",
    "Tier",
    "TierStats",
    "TurnStats",
    "WeightConfig",
    "compress_",
    "generate",
    "load_compressed",
    "load_model",
    "parse_kv",
    "plan_auto",
    "run_compress",
    "save_compressed",
    "stream",
    "track_attention",
]


__getattr__, __dir__ = lazy_names(__name__, _MODULES, __all__)
