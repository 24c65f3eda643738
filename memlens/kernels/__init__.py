"""Quantized math: one function per op, dispatched by device and an explicit preference.

The storage formats (quantizers, packing) are defined in ``formats.py``. Every op has a
float reference in ``reference.py``; fast paths live in ``cpu.py`` (aten's packed
kernels), ``cuda.py`` (aten CUDA ops, imported only for tensors on a GPU) and ``kv.py``
(the KV cache's in-place dequantization, any device); any other device runs the
reference.
"""

from __future__ import annotations

from enum import StrEnum

import torch

from memlens.kernels import cpu, reference


class KernelPreference(StrEnum):
    """Which implementation runs an op."""

    AUTO = "auto"
    """The fastest available for the device."""
    REFERENCE = "reference"
    """The plain float reference (slow; for tests and debugging)."""


def int8_matmul(
    x: torch.Tensor,
    q: torch.Tensor,
    scale: torch.Tensor,
    preference: KernelPreference = KernelPreference.AUTO,
) -> torch.Tensor:
    """``x @ dequant(q, scale).T`` (INT8 weight-only, per output channel)."""
    if preference is KernelPreference.REFERENCE:
        return reference.int8_matmul(x, q, scale)
    if x.device.type == "cuda":
        from memlens.kernels import cuda  # only where CUDA exists

        return cuda.int8_matmul(x, q, scale)
    if x.device.type != "cpu" or not cpu.int8_fits(q):
        return reference.int8_matmul(x, q, scale)
    return cpu.int8_matmul(x, q, scale)


__all__ = ["KernelPreference", "cpu", "int8_matmul", "reference"]
