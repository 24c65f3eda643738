"""memlens's quantized storage formats: the quantizers production code stores with
(compressed Linear layers, the KV cache, a session's warm form) and their plain inverses.

Formats (shared with the fast paths, the oracles in ``reference.py`` and
``memlens/profiler/tensors.py``'s byte counts):

- INT8 weight-only, symmetric per output channel: ``w ≈ q * scale[:, None]``,
  ``q`` in [-127, 127].
- INT4 weight-only, asymmetric per group of ``g`` input features: ``w ≈ (q - 8) * scale +
  zero`` with ``q`` in [0, 15] (the layout aten's int4 CPU kernels use).
- INT8-dyn activations (the ``int8-dyn`` weight scheme): asymmetric over the whole call's
  input, ``x ≈ (q - zero) * scale`` with ``q`` in [0, 127] (7 bits: AVX2's u8×s8 pair sums
  saturate int16 with 8), ``zero`` an integer and 0 exactly representable.
- Per-token-group quantization of activations (KV cache): along the last dimension, in
  groups of ``g``, ``x ≈ q * scale + minimum`` with ``q`` in [0, 2**bits - 1].
- Per-channel groups of tokens (KV cache keys, as KIVI): the same along the token
  dimension ``-2``, each group spanning ``g`` tokens of one channel.
- Packed 4-bit values: two per byte along the last dimension, the first half of the
  elements in the low nibbles, the second half in the high nibbles.
"""

from __future__ import annotations

import torch

INT4_MIDPOINT = 8
INT8_DYN_LEVELS = 127
_EPS = 1e-8


_INT8_ROWS = 4096
"""Rows quantized at once: the float32 temporaries of a whole LM head (32000 × 2048) would
take 0.5 GiB at once while a model loads compressed."""


def quantize_int8_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, K)`` float → int8 ``(N, K)`` and float32 per-channel scales ``(N,)``."""
    scale = weight.abs().amax(dim=1).float().clamp(min=_EPS) / 127  # (N,)
    q = torch.empty(weight.shape, dtype=torch.int8, device=weight.device)  # (N, K)
    for start in range(0, weight.shape[0], _INT8_ROWS):
        end = start + _INT8_ROWS
        block = torch.round(weight[start:end].float() / scale[start:end, None])  # (≤ rows, K)
        q[start:end] = block.clamp_(-127, 127)
    return q, scale


def quantize_int8_dyn_activations(x: torch.Tensor) -> tuple[torch.Tensor, float, int]:
    """``x (…, K)`` float → values ``(…, K)`` int32 in [0, 127], the scale and the zero
    point of the whole tensor (the INT8-dyn activation format)."""
    low = min(float(x.min()), 0.0)
    high = max(float(x.max()), 0.0)
    scale = max((high - low) / INT8_DYN_LEVELS, _EPS)
    zero = int(min(max(round(-low / scale), 0), INT8_DYN_LEVELS))
    q = torch.clamp(torch.round(x.float() / scale) + zero, 0, INT8_DYN_LEVELS)
    return q.to(torch.int32), scale, zero


def quantize_int4_weight(
    weight: torch.Tensor, group_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(N, K)`` float → values ``(N, K)`` int32 in [0, 15], scales and zeros ``(N, K/g)``."""
    n, k = weight.shape
    grouped = weight.float().reshape(n, k // group_size, group_size)  # (N, K/g, g)
    low = grouped.amin(dim=-1)  # (N, K/g)
    high = grouped.amax(dim=-1)
    scale = (high - low).clamp(min=_EPS) / 15
    q = torch.clamp(torch.round((grouped - low[..., None]) / scale[..., None]), 0, 15)
    zero = low + INT4_MIDPOINT * scale  # so that w = (q - 8) * scale + zero
    return q.reshape(n, k).to(torch.int32), scale, zero


def dequantize_int4_weight(
    values: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, group_size: int
) -> torch.Tensor:
    """Inverse of :func:`quantize_int4_weight` → float32 ``(N, K)``."""
    n, k = values.shape
    grouped = values.float().reshape(n, k // group_size, group_size)  # (N, K/g, g)
    weight = (grouped - INT4_MIDPOINT) * scale[..., None] + zero[..., None]
    return weight.reshape(n, k)


def quantize_groups(
    x: torch.Tensor, bits: int, group_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Quantize the last dimension in groups: → uint8 values, float scales and minimums
    of shape ``(…, D/g)``."""
    *lead, d = x.shape
    grouped = x.float().reshape(*lead, d // group_size, group_size)  # (…, D/g, g)
    low = grouped.amin(dim=-1)  # (…, D/g)
    scale = (grouped.amax(dim=-1) - low).clamp(min=_EPS) / (2**bits - 1)
    q = torch.clamp(torch.round((grouped - low[..., None]) / scale[..., None]), 0, 2**bits - 1)
    return q.reshape(*lead, d).to(torch.uint8), scale, low


def dequantize_groups(
    q: torch.Tensor,
    scale: torch.Tensor,
    low: torch.Tensor,
    group_size: int,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Inverse of :func:`quantize_groups` → ``(…, D)`` in ``dtype``."""
    *lead, d = q.shape
    grouped = q.float().reshape(*lead, d // group_size, group_size)  # (…, D/g, g)
    return (grouped * scale[..., None] + low[..., None]).reshape(*lead, d).to(dtype)


def quantize_token_groups(
    x: torch.Tensor, bits: int, group_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Quantize ``x (…, T, D)`` per channel in groups of ``group_size`` tokens → uint8
    values ``(…, T, D)``, float scales and minimums ``(…, T/g, D)``."""
    q, scale, low = quantize_groups(x.transpose(-1, -2), bits, group_size)  # (…, D, T), (…, D, T/g)
    return q.transpose(-1, -2), scale.transpose(-1, -2), low.transpose(-1, -2)


def dequantize_token_groups(
    q: torch.Tensor,
    scale: torch.Tensor,
    low: torch.Tensor,
    group_size: int,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Inverse of :func:`quantize_token_groups` → ``(…, T, D)`` in ``dtype``."""
    flipped = dequantize_groups(
        q.transpose(-1, -2), scale.transpose(-1, -2), low.transpose(-1, -2), group_size, dtype
    )  # (…, D, T)
    return flipped.transpose(-1, -2)


def pack_int4(q: torch.Tensor) -> torch.Tensor:
    """uint8 values in [0, 15] ``(…, 2n)`` → two per byte ``(…, n)``: element ``i`` in the
    low nibble of byte ``i``, element ``n + i`` in its high nibble."""
    n = q.shape[-1] // 2
    return q[..., :n] | (q[..., n:] << 4)


def unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`pack_int4`: ``(…, n)`` → ``(…, 2n)`` uint8 in [0, 15]."""
    return torch.cat([packed & 15, packed >> 4], dim=-1)
