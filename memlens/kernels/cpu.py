"""CPU fast paths through aten's packed-weight kernels.

``_weight_int8pack_mm`` wants scales in the activation dtype; the int4 kernel wants the
weight packed by ``_convert_weight_to_int4pack_for_cpu`` and scales/zeros as one
``(K/g, N, 2)`` tensor in the activation dtype. Both are fastest with bf16 activations
(measured: fp32 activations take the slow path).
"""

from __future__ import annotations

import torch

_INNER_K_TILES = 1  # the CPU packer ignores tiling but requires the argument


INT8_K_MULTIPLE = 8
"""``_weight_int8pack_mm`` reads K in blocks of 8: other K crash or go wrong for M > 1."""


def int8_fits(q: torch.Tensor) -> bool:
    """Whether the packed kernel can take this weight."""
    return q.shape[1] % INT8_K_MULTIPLE == 0


def int8_matmul(x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``x (…, K)`` bf16/fp16/fp32 times int8 ``q (N, K)`` with scales ``(N,)`` → ``(…, N)``
    (``K`` a multiple of 8: see :func:`int8_fits`)."""
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1]).contiguous()  # (M, K)
    out: torch.Tensor = torch.ops.aten._weight_int8pack_mm(flat, q, scale.to(x.dtype))  # (M, N)
    return out.reshape(*lead, q.shape[0])


def pack_int4(values: torch.Tensor) -> torch.Tensor:
    """Values ``(N, K)`` in [0, 15] → the packed ``(N, K/2)`` uint8 layout."""
    packed: torch.Tensor = torch.ops.aten._convert_weight_to_int4pack_for_cpu(
        values.to(torch.int32), _INNER_K_TILES
    )
    return packed


def scales_and_zeros(scale: torch.Tensor, zero: torch.Tensor) -> torch.Tensor:
    """``(N, K/g)`` scales and zeros → the kernel's ``(K/g, N, 2)`` layout."""
    return torch.stack([scale, zero], dim=-1).transpose(0, 1).contiguous()  # (K/g, N, 2)


def int4_matmul(
    x: torch.Tensor, packed: torch.Tensor, group_size: int, scales_zeros: torch.Tensor
) -> torch.Tensor:
    """``x (…, K)`` times a packed int4 weight → ``(…, N)`` in ``x``'s dtype."""
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1]).contiguous()  # (M, K): the kernel needs it dense
    out: torch.Tensor = torch.ops.aten._weight_int4pack_mm_for_cpu(
        flat, packed, group_size, scales_zeros.to(x.dtype)
    )  # (M, N)
    return out.reshape(*lead, out.shape[-1])
