"""Fake quantization onto memlens's weight grids with straight-through gradients.

The forward value is exactly what the compressed layer will hold after export: the
production quantizers of ``memlens/kernels/formats.py``, with scales (and INT4 zeros)
rounded to bf16 as ``memlens/engine/weights/layers.py`` stores them. The backward pass
treats rounding as the identity (the straight-through estimator).
"""

from __future__ import annotations

import torch

from memlens.engine.weights.config import Int4WeightConfig, Int8WeightConfig, WeightConfig
from memlens.engine.weights.layers import COMPUTE_DTYPE
from memlens.errors import UsageError
from memlens.kernels.formats import (
    dequantize_int4_weight,
    quantize_int4_weight,
    quantize_int8_weight,
)
from memlens.profiler.tensors import int4_fits


def deployed_scheme(weight_shape: tuple[int, int], config: WeightConfig) -> WeightConfig:
    """The scheme a Linear of ``(out, in)`` actually gets under ``config``: INT4 falls back
    to INT8 where the layer does not fit it, as ``compress_`` does."""
    if isinstance(config, Int4WeightConfig):
        out_features, in_features = weight_shape
        if not int4_fits(out_features, in_features, config.group_size):
            return Int8WeightConfig()
        return config
    if isinstance(config, Int8WeightConfig):
        return config
    raise UsageError(f"QAT trains for int8 or int4 weights, not {config.label()}")


def quantize_dequantize(weight: torch.Tensor, config: WeightConfig) -> torch.Tensor:
    """``(out, in)`` → the float32 weight the compressed layer computes with."""
    scheme = deployed_scheme((weight.shape[0], weight.shape[1]), config)
    if isinstance(scheme, Int4WeightConfig):
        values, scale, zero = quantize_int4_weight(weight.detach(), scheme.group_size)
        scale = scale.to(COMPUTE_DTYPE).float()  # (out, in/g) as stored
        zero = zero.to(COMPUTE_DTYPE).float()
        return dequantize_int4_weight(values, scale, zero, scheme.group_size)
    q, scale = quantize_int8_weight(weight.detach())
    return q.float() * scale.to(COMPUTE_DTYPE).float()[:, None]  # (out, in)


def fake_quantize(weight: torch.Tensor, config: WeightConfig) -> torch.Tensor:
    """The quantized value of ``weight`` in the forward pass, the identity in the backward
    pass (straight-through)."""
    quantized = quantize_dequantize(weight, config).to(weight.dtype)
    return weight + (quantized - weight).detach()
