"""Compressed inference: INT8/INT4/low-rank weights, per-layer plans, checkpoints,
incremental decoding and the measurements that check what compression costs."""

from memlens.engine.checkpoint import load_compressed, save_compressed
from memlens.engine.config import (
    AutoWeightConfig,
    Int4WeightConfig,
    Int8WeightConfig,
    LowRankWeightConfig,
    MixedWeightConfig,
    WeightConfig,
)
from memlens.engine.generate import Sampling, generate, stream
from memlens.engine.jobs import CompressJob, run_compress
from memlens.engine.loading import load_model
from memlens.engine.quantize import compress_
from memlens.engine.report import CompressionReport
from memlens.engine.sensitivity import plan_auto

__all__ = [
    "AutoWeightConfig",
    "CompressJob",
    "CompressionReport",
    "Int4WeightConfig",
    "Int8WeightConfig",
    "LowRankWeightConfig",
    "MixedWeightConfig",
    "Sampling",
    "WeightConfig",
    "compress_",
    "generate",
    "load_compressed",
    "load_model",
    "plan_auto",
    "run_compress",
    "save_compressed",
    "stream",
]
