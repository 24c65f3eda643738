"""Quantized math: one function per op, dispatched by device and an explicit preference.

The storage formats (quantizers, packing) are defined in ``formats.py``. Every op has a
float reference in ``reference.py``; fast paths live in ``cpu.py`` (aten's packed
kernels, for few rows: decoding), ``native.py`` (INT8 on AVX-512 VNNI for a few rows
with one thread, built from C on first use), ``dense.py`` (dequantize, then a dense matmul: for many
rows, prefill), ``cuda.py`` (aten CUDA ops, imported only for tensors on a GPU) and ``kv.py``
(the KV cache's in-place dequantization, any device); any other device runs the
reference. An INT4 weight is packed for the kernel of the device it is on (CPU layout
everywhere but CUDA, tinygemm's there; ``int4_layouts.py``).
"""

from __future__ import annotations

from enum import StrEnum

import torch

from memlens.errors import UsageError
from memlens.kernels import cpu, dense, native, reference
from memlens.kernels.int4_layouts import cpu_values


class KernelPreference(StrEnum):
    """Which implementation runs an op."""

    AUTO = "auto"
    """The fastest available for the device and the number of rows: on the CPU the packed
    kernels for few rows (decoding), the dense path for many (prefill; thresholds in
    ``dense.py``)."""
    PACKED = "packed"
    """On the CPU, aten's packed kernels at any number of rows (not the native one)."""
    DENSE = "dense"
    """On the CPU, dequantize the weight and run a dense matmul at any number of rows."""
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
    if x.device.type != "cpu":
        return reference.int8_matmul(x, q, scale)
    if _runs_dense(x, preference, dense.INT8_DENSE_ROWS):
        return dense.int8_matmul(x, q, scale, dense.dense_dtype())
    rows = x.numel() // x.shape[-1]
    if preference is KernelPreference.AUTO and native.preferred(q, rows):
        return native.int8_matmul(x, q, scale)
    if not cpu.int8_fits(q):
        return reference.int8_matmul(x, q, scale)
    return cpu.int8_matmul(x, q, scale)


def _runs_dense(x: torch.Tensor, preference: KernelPreference, from_rows: int) -> bool:
    rows = x.numel() // x.shape[-1]
    auto = preference is KernelPreference.AUTO and rows >= from_rows
    return auto or preference is KernelPreference.DENSE


def int4_matmul(
    x: torch.Tensor,
    packed: torch.Tensor,
    group_size: int,
    scales_zeros: torch.Tensor,
    preference: KernelPreference = KernelPreference.AUTO,
) -> torch.Tensor:
    """``x (…, K)`` bf16 times an INT4 weight packed for its device (see
    :func:`pack_int4`) with scales and zeros ``(K/g, N, 2)`` → ``(…, N)``."""
    if x.device != packed.device:
        raise UsageError(
            f"an INT4 layer's weights are on {_device_name(packed.device)} but its input is "
            f"on {_device_name(x.device)}: move the model and its inputs to one device"
        )
    if preference is KernelPreference.REFERENCE:
        n, k = scales_zeros.shape[1], x.shape[-1]
        values = int4_values(packed, n, k, group_size)  # (N, K)
        scale, zero = scales_zeros[..., 0].T, scales_zeros[..., 1].T  # (N, K/g) each
        return reference.int4_matmul(x, values, scale.float(), zero.float(), group_size)
    if packed.device.type == "cuda":
        from memlens.kernels import cuda  # only where CUDA exists

        return cuda.int4_matmul(x, packed, group_size, scales_zeros)
    if packed.device.type != "cpu":
        raise UsageError(
            f"INT4 layers run on the CPU or a CUDA device, not on {packed.device.type}; "
            "use INT8 there"
        )
    block = dense.int4_fits(packed)
    if block is not None and _runs_dense(x, preference, dense.INT4_DENSE_ROWS):
        return dense.int4_matmul(x, packed, group_size, scales_zeros, block, dense.dense_dtype())
    return cpu.int4_matmul(x, packed, group_size, scales_zeros)


def _device_name(device: torch.device) -> str:
    return "the CPU" if device.type == "cpu" else str(device)


def uses_cuda_int4_layout(device: torch.device) -> bool:
    """Whether INT4 weights on ``device`` are packed in tinygemm's CUDA layout (else in
    aten's CPU layout, memlens's stored form)."""
    return device.type == "cuda"


def pack_int4(values: torch.Tensor, device: torch.device) -> torch.Tensor:
    """INT4 values ``(N, K)`` in [0, 15] → the weight packed for ``device``'s kernel, on
    ``device``."""
    if uses_cuda_int4_layout(device):
        from memlens.kernels import cuda  # only where CUDA exists

        return cuda.pack_int4(values.to(device))
    n, k = values.shape
    if values.is_meta:
        return torch.empty(n, k // 2, dtype=torch.uint8, device=device)
    return cpu.pack_int4(values.cpu()).to(device)


def int4_values(packed: torch.Tensor, n: int, k: int, group_size: int) -> torch.Tensor:
    """Inverse of :func:`pack_int4` for ``packed``'s device: values ``(N, K)`` int32."""
    if uses_cuda_int4_layout(packed.device):
        from memlens.kernels import cuda  # only where CUDA exists

        return cuda.int4_values(packed, n, k, group_size)
    return cpu_values(packed.cpu() if not packed.is_meta else packed, n, k)


__all__ = [
    "KernelPreference",
    "cpu",
    "dense",
    "int4_matmul",
    "int4_values",
    "int8_matmul",
    "native",
    "pack_int4",
    "reference",
    "uses_cuda_int4_layout",
]
