"""Compressed inference: weight-only INT8/INT4 layers and ``compress_``."""

from memlens.engine.checkpoint import load_compressed, save_compressed
from memlens.engine.config import Int4WeightConfig, Int8WeightConfig, WeightConfig
from memlens.engine.quantize import compress_

__all__ = [
    "Int4WeightConfig",
    "Int8WeightConfig",
    "WeightConfig",
    "compress_",
    "load_compressed",
    "save_compressed",
]
