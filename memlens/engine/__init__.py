"""Compressed inference: INT8/INT4/low-rank weights, per-layer plans, checkpoints,
incremental decoding and the measurements that check what compression costs."""

from memlens.engine.checkpoint import load_compressed, save_compressed
from memlens.engine.config import (
    AutoWeightConfig,
    HeavyHitterEviction,
    Int4WeightConfig,
    Int8WeightConfig,
    KVCacheConfig,
    LowRankWeightConfig,
    MixedWeightConfig,
    SinkWindowEviction,
    WeightConfig,
    parse_kv,
)
from memlens.engine.generate import Sampling, generate, stream
from memlens.engine.jobs import CompressJob, run_compress
from memlens.engine.kvcache import CompressedKVCache, KVLayerBytes, track_attention
from memlens.engine.loading import load_model
from memlens.engine.quantize import compress_
from memlens.engine.report import CompressionReport
from memlens.engine.sensitivity import plan_auto
from memlens.engine.session_config import SessionStoreConfig, Tier
from memlens.engine.session_store import StoreStats, TierStats
from memlens.engine.sessions import Engine, Session, TurnStats
from memlens.errors import SessionBudgetError, SessionLostError, SpillError

__all__ = [
    "AutoWeightConfig",
    "CompressJob",
    "CompressedKVCache",
    "CompressionReport",
    "Engine",
    "HeavyHitterEviction",
    "Int4WeightConfig",
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
