"""Weight-only matmuls for many rows (prefill): dequantize the weight, then one dense matmul
in the dtype this CPU multiplies fastest.

aten's packed kernels (``cpu.py``) walk the weight once per row of the input, so their
cost grows with every token; a dense matmul reuses each weight across rows but first pays
for dequantizing it. Measured on a 2-core Xeon with AMX-BF16 (one thread, bf16
activations, load ~2), packed / dense in ms:

    rows   INT8 1536×576  INT4 1536×576  INT8 5632×2048  INT4 5632×2048
       8   0.17 / 0.29    0.16 / 1.09    2.1 / 3.8       2.1 / 14.5
      16   0.34 / 0.29    0.31 / 1.11    4.2 / 3.9       4.2 / 14.0
      64   1.36 / 0.39    1.26 / 1.21    16.6 / 4.9      16.4 / 14.6
     128   2.68 / 0.55    2.52 / 1.29    35.6 / 6.3      33.8 / 16.6

INT8 converts exactly to bf16 in one pass; INT4 needs its nibbles unpacked, offset and
scaled (~13 ms for 5632×2048), so it crosses later: :data:`INT8_DENSE_ROWS`,
:data:`INT4_DENSE_ROWS`. At 512 rows (a prefill) dense wins ~8× for INT8.

The dense dtype is chosen from the CPU's features at run time (:func:`dense_dtype`):
bf16 where the CPU multiplies bf16 natively (AVX-512 BF16 or AMX), float32 elsewhere
(on AVX2, oneDNN emulates bf16 matmuls).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch.nn import functional

from memlens.kernels import cpu
from memlens.kernels.formats import INT4_MIDPOINT

INT8_DENSE_ROWS = 16
"""From this many input rows (tokens × batch) on, INT8 weight-only matmuls run dense."""
INT4_DENSE_ROWS = 64
"""From this many input rows on, INT4 matmuls run dense."""


@dataclass(frozen=True)
class CpuFeatures:
    """What the CPU multiplies natively (read at run time, never assumed)."""

    avx512_bf16: bool
    amx_bf16: bool

    @classmethod
    @functools.cache
    def detect(cls) -> CpuFeatures:
        """This machine's features, as torch's CPU probes (CPUID) report them; a torch
        without a probe reports the feature missing."""
        return cls(_probe("_is_avx512_bf16_supported"), _probe("_is_amx_tile_supported"))


def _probe(name: str) -> bool:
    probe = getattr(torch.cpu, name, None)
    return bool(probe()) if callable(probe) else False


def dense_dtype(features: CpuFeatures | None = None) -> torch.dtype:
    """bf16 where ``features`` (default: this CPU's) multiply bf16 natively, else float32."""
    found = features or CpuFeatures.detect()
    return torch.bfloat16 if found.avx512_bf16 or found.amx_bf16 else torch.float32


def int8_matmul(
    x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """``x (…, K) @ dequant(q (N, K), scale (N,)).T`` → ``(…, N)`` in ``x``'s dtype,
    multiplied in ``dtype``: the int8 values convert exactly (|q| ≤ 127 fits bf16's 8
    significant bits) and the per-channel scale applies to the output."""
    out = functional.linear(x.to(dtype), q.to(dtype)) * scale.to(dtype)  # (…, N)
    return out.to(x.dtype)


def int4_matmul(
    x: torch.Tensor,
    packed: torch.Tensor,
    group_size: int,
    scales_zeros: torch.Tensor,
    block: int,
    dtype: torch.dtype,
) -> torch.Tensor:
    """``x (…, K)`` times an INT4 weight in aten's CPU packing with ``block`` rows per block
    (see :func:`cpu_row_block`) and scales/zeros ``(K/g, N, 2)`` → ``(…, N)`` in ``x``'s
    dtype, multiplied in ``dtype``."""
    n = packed.shape[0]
    values = blocked_values(packed, block)  # (N, K) uint8
    k = values.shape[1]
    scale = scales_zeros[..., 0].T.to(dtype)[..., None]  # (N, K/g, 1)
    offset = scales_zeros[..., 1].T.to(dtype)[..., None] - INT4_MIDPOINT * scale  # (N, K/g, 1)
    weight = values.to(dtype).reshape(n, k // group_size, group_size)  # (N, K/g, g)
    weight.mul_(scale).add_(offset)  # (q - 8) * scale + zero, in place
    return functional.linear(x.to(dtype), weight.reshape(n, k)).to(x.dtype)  # (…, N)


def blocked_values(packed: torch.Tensor, block: int) -> torch.Tensor:
    """aten's CPU INT4 packing ``(N, K/2)`` uint8, laid out as ``[N/block][K][block/2]``
    bytes with row ``r`` of a block in the low nibble and ``r + block/2`` in the high one,
    → values ``(N, K)`` uint8 in [0, 15] (``N`` a multiple of ``block``)."""
    n, half = packed.shape
    k = 2 * half
    pairs = packed.reshape(n // block, k, block // 2).transpose(1, 2).contiguous()
    values = torch.empty(n // block, block, k, dtype=torch.uint8, device=packed.device)
    torch.bitwise_and(pairs, 15, out=values[:, : block // 2])  # (N/B, B/2, K) of (N/B, B, K)
    torch.bitwise_right_shift(pairs, 4, out=values[:, block // 2 :])
    return values.reshape(n, k)


@functools.cache
def cpu_row_block() -> int | None:
    """Rows per block of this build's CPU INT4 packing when it is the plain blocked layout
    :func:`blocked_values` reads (measured: 64 under AVX-512, 32 under AVX2), found by
    packing a probe and reading it back; ``None`` where it is another layout (aten's plain
    path: the packed kernel runs then)."""
    generator = torch.Generator().manual_seed(0)
    for block in (64, 32):
        probe = torch.randint(0, 16, (2 * block, 32), dtype=torch.int32, generator=generator)
        if torch.equal(blocked_values(cpu.pack_int4(probe), block).to(torch.int32), probe):
            return block
    return None


def int4_fits(packed: torch.Tensor) -> int | None:
    """The row block :func:`int4_matmul` reads ``packed`` with, or ``None`` where it cannot
    (another layout, or rows that do not fill whole blocks)."""
    block = cpu_row_block()
    return block if block is not None and packed.shape[0] % block == 0 else None
