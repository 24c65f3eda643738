"""The KV cache's fast path: dequantize the quantized history straight into the tensor
attention reads, on any device (``reference.dequantize_keys`` / ``dequantize_values`` are
the oracles).

Each function casts, then scales and shifts in place: a mixed uint8/float multiply-add
runs ~3x slower on the CPU than these three plain passes, and nothing dequantized is
allocated besides ``out``.
"""

from __future__ import annotations

import torch


def dequantize_keys_into(
    out: torch.Tensor,
    q: torch.Tensor,
    scale: torch.Tensor,
    low: torch.Tensor,
    bits: int | None,
    group_size: int,
) -> None:
    """``out (B, H, T, D)`` ← keys quantized per channel in groups of ``group_size``
    tokens: ``q (B, H, T, D)`` uint8 (``(B, H, T, D/2)`` packed at 4 bits), scales and
    minimums ``(B, H, T/g, D)``. ``out`` may be a view (a slice of a larger tensor)."""
    _cast_into(out, q, bits)
    batch, heads, tokens, dim = out.shape
    grouped = out.view(batch, heads, tokens // group_size, group_size, dim)  # (B, H, T/g, g, D)
    grouped.mul_(scale[..., None, :].to(out.dtype))  # (B, H, T/g, 1, D)
    grouped.add_(low[..., None, :].to(out.dtype))


def dequantize_values_into(
    out: torch.Tensor,
    q: torch.Tensor,
    scale: torch.Tensor,
    low: torch.Tensor,
    bits: int | None,
    group_size: int,
) -> None:
    """``out (B, H, T, D)`` ← values quantized per token in groups of ``group_size``
    channels: ``q (B, H, T, D)`` uint8 (``(B, H, T, D/2)`` packed at 4 bits), scales and
    minimums ``(B, H, T, D/g)``. ``out`` may be a view (a slice of a larger tensor)."""
    _cast_into(out, q, bits)
    batch, heads, tokens, dim = out.shape
    grouped = out.view(batch, heads, tokens, dim // group_size, group_size)  # (B, H, T, D/g, g)
    grouped.mul_(scale[..., None].to(out.dtype))  # (B, H, T, D/g, 1)
    grouped.add_(low[..., None].to(out.dtype))


def _cast_into(out: torch.Tensor, q: torch.Tensor, bits: int | None) -> None:
    """``out (…, D)`` ← integer values ``q`` as floats; 4-bit ones unpacked on the way (no
    unpacked copy, unlike ``formats.unpack_int4``)."""
    if bits != 4:
        out.copy_(q)
        return
    half = q.shape[-1]  # (…, D/2) packed
    out[..., :half].copy_(q & 15)
    out[..., half:].copy_(q >> 4)
