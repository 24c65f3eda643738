"""Plain float references (the oracles tests compare the fast paths with): the weight-only
matmuls (also the fallback where no fast path fits) and the KV cache's dequantization.
The formats themselves are defined in ``formats.py``."""

from __future__ import annotations

import torch

from memlens.kernels.formats import (
    dequantize_groups,
    dequantize_int4_weight,
    dequantize_token_groups,
    quantize_int8_dyn_activations,
    unpack_int4,
)


def int8_matmul(x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``x (…, K) @ dequant(q (N, K), scale (N,)).T`` → ``(…, N)`` in ``x``'s dtype."""
    weight = q.float() * scale.float()[:, None]  # (N, K)
    return (x.float() @ weight.T).to(x.dtype)


def int8_dyn_matmul(x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``x (…, K)`` quantized to INT8-dyn activations, times ``dequant(q (N, K), scale
    (N,)).T`` → ``(…, N)`` in float32."""
    values, x_scale, zero = quantize_int8_dyn_activations(x)  # (…, K)
    activations = (values - zero).float() * x_scale  # (…, K)
    weight = q.float() * scale.float()[:, None]  # (N, K)
    return activations @ weight.T


def int4_matmul(
    x: torch.Tensor, values: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, group_size: int
) -> torch.Tensor:
    """``x (…, K) @ dequant(values).T`` → ``(…, N)`` in ``x``'s dtype."""
    weight = dequantize_int4_weight(values, scale, zero, group_size)  # (N, K)
    return (x.float() @ weight.T).to(x.dtype)


def dequantize_keys(
    q: torch.Tensor,
    scale: torch.Tensor,
    low: torch.Tensor,
    bits: int,
    group_size: int,
    dtype: torch.dtype,
) -> torch.Tensor:
    """KV cache keys: ``q (B, H, T, D)`` uint8 (``(B, H, T, D/2)`` packed at 4 bits) with
    per-channel scales and minimums ``(B, H, T/g, D)`` → ``(B, H, T, D)`` in ``dtype``
    (the oracle of ``kv.dequantize_keys_into``)."""
    values = unpack_int4(q) if bits == 4 else q  # (B, H, T, D)
    return dequantize_token_groups(values, scale.float(), low.float(), group_size, dtype)


def dequantize_values(
    q: torch.Tensor,
    scale: torch.Tensor,
    low: torch.Tensor,
    bits: int,
    group_size: int,
    dtype: torch.dtype,
) -> torch.Tensor:
    """KV cache values: ``q (B, H, T, D)`` uint8 (``(B, H, T, D/2)`` packed at 4 bits) with
    per-token scales and minimums ``(B, H, T, D/g)`` → ``(B, H, T, D)`` in ``dtype`` (the
    oracle of ``kv.dequantize_values_into``)."""
    values = unpack_int4(q) if bits == 4 else q  # (B, H, T, D)
    return dequantize_groups(values, scale.float(), low.float(), group_size, dtype)


def dequantize_tinygemm_int4(
    nibbles: torch.Tensor, scales_zeros: torch.Tensor, group_size: int
) -> torch.Tensor:
    """What aten's CUDA INT4 kernel (tinygemm) computes each weight as, written from its
    source: ``nibbles (N, K/2)`` uint8 as its packer takes them (even ``k`` in the high
    nibble), ``scales_zeros (K/g, N, 2)`` → ``(q - 8) * scale + zero`` float32 ``(N, K)``
    (the oracle of the CUDA conversion, which has no CPU kernel to compare with)."""
    n = nibbles.shape[0]
    values = torch.stack([nibbles >> 4, nibbles & 15], dim=-1).reshape(n, -1).float()  # (N, K)
    scale = scales_zeros[..., 0].float().T.repeat_interleave(group_size, dim=1)  # (N, K)
    zero = scales_zeros[..., 1].float().T.repeat_interleave(group_size, dim=1)  # (N, K)
    return (values - 8) * scale + zero
