"""GPU paths through aten's CUDA ops; imported only when a tensor is on a CUDA device.

INT8 runs ``_weight_int8pack_mm`` (int8 weights read as they are stored) for bf16
activations with ``K`` a multiple of 8 (what compressed layers send); other calls
dequantize into the activation dtype and run cuBLAS. INT4 runs tinygemm
(``_weight_int4pack_mm``) on the layout ``_convert_weight_to_int4pack`` builds on the GPU;
``int4_layouts.py`` holds the plain tensor code around it, tested on the CPU. Nothing here
has a CPU fallback: these functions need CUDA tensors.
"""

from __future__ import annotations

from functools import partial

import torch

from memlens.kernels import cpu
from memlens.kernels.int4_layouts import (
    tinygemm_inner_k_tiles,
    tinygemm_nibbles,
    values_through_kernel,
)


def int8_matmul(x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``x (…, K)`` times int8 ``q (N, K)`` with per-channel ``scale (N,)`` → ``(…, N)``."""
    if x.dtype != torch.bfloat16 or q.shape[1] % cpu.INT8_K_MULTIPLE != 0:
        return int8_matmul_dequantized(x, q, scale)
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1]).contiguous()  # (M, K)
    out: torch.Tensor = torch.ops.aten._weight_int8pack_mm(flat, q, scale.to(x.dtype))  # (M, N)
    return out.reshape(*lead, q.shape[0])


def int8_matmul_dequantized(x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The same product through a transient ``x``-dtype copy of the weight and cuBLAS."""
    out = torch.nn.functional.linear(x, q.to(x.dtype))  # (…, N)
    return out * scale.to(x.dtype)


def pack_int4(values: torch.Tensor) -> torch.Tensor:
    """Values ``(N, K)`` in [0, 15] on a CUDA device → tinygemm's packed int32 layout
    ``(N/8, K/(16·tiles), 32, tiles/2)`` (``N·K/2`` bytes, as the CPU packing)."""
    tiles = tinygemm_inner_k_tiles(values.shape[1])
    packed: torch.Tensor = torch.ops.aten._convert_weight_to_int4pack(
        tinygemm_nibbles(values).contiguous(), tiles
    )
    return packed


def int4_matmul(
    x: torch.Tensor, packed: torch.Tensor, group_size: int, scales_zeros: torch.Tensor
) -> torch.Tensor:
    """``x (…, K)`` bf16 times a tinygemm-packed int4 weight with scales and zeros
    ``(K/g, N, 2)`` → ``(…, N)`` bf16."""
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1]).to(torch.bfloat16).contiguous()  # (M, K)
    out: torch.Tensor = torch.ops.aten._weight_int4pack_mm(
        flat, packed, group_size, scales_zeros.to(torch.bfloat16).contiguous()
    )  # (M, N)
    return out.reshape(*lead, out.shape[-1])


def int4_values(packed: torch.Tensor, n: int, k: int, group_size: int) -> torch.Tensor:
    """Inverse of :func:`pack_int4`: the values ``(N, K)`` int32, on the GPU."""
    kernel = partial(_int4_kernel, packed, group_size)
    return values_through_kernel(kernel, n, k, group_size, packed.device)


def _int4_kernel(
    packed: torch.Tensor, group_size: int, x: torch.Tensor, scales_zeros: torch.Tensor
) -> torch.Tensor:
    return int4_matmul(x, packed, group_size, scales_zeros)
