"""INT4 weight layouts and the plain tensor code that converts between them.

memlens stores an INT4 layer as aten's CPU packing (``cpu.pack_int4``: ``(N, K/2)``
uint8) with scales and zeros ``(K/g, N, 2)``; that is the form checkpoints hold and
``memlens estimate`` counts. aten's CUDA kernel (tinygemm) reads another layout, built
on the GPU by ``_convert_weight_to_int4pack`` from ``(N, K/2)`` uint8 with the even ``k``
in the high nibble and the odd ``k`` in the low one. Both kernels dequantize
``(q - 8) * scale + zero`` with a float zero, which is memlens's format as it is (see
``formats.quantize_int4_weight``), so the scales and zeros carry over unchanged and only
the 4-bit values are re-laid.

The CPU packing depends on the CPU capability aten dispatches to (the AVX-512, AVX2 and
plain paths group output rows differently), so its inverse is read off the packer of the
running process (:func:`cpu_values`) and checked by packing the result again.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from memlens.errors import ConfigError
from memlens.kernels import cpu
from memlens.kernels.formats import INT4_MIDPOINT

_TINYGEMM_K_TILE = 16


def tinygemm_inner_k_tiles(in_features: int) -> int:
    """The largest inner-K tiling (8, 4 or 2 tiles of 16) that divides ``in_features``."""
    return next(t for t in (8, 4, 2) if in_features % (t * _TINYGEMM_K_TILE) == 0)


def tinygemm_nibbles(values: torch.Tensor) -> torch.Tensor:
    """Values ``(N, K)`` in [0, 15] → the ``(N, K/2)`` uint8 input of aten's CUDA packer:
    byte ``j`` holds ``k = 2j`` in its high nibble and ``k = 2j + 1`` in its low one."""
    as_bytes = values.to(torch.uint8)
    return (as_bytes[:, ::2] << 4) | as_bytes[:, 1::2]  # (N, K/2)


Int4Kernel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``(x (M, K) bf16, scales_and_zeros (K/g, N, 2) bf16) → x @ dequant(W).T (M, N)`` for one
packed weight ``W``."""


def values_through_kernel(
    kernel: Int4Kernel, n: int, k: int, group_size: int, device: torch.device
) -> torch.Tensor:
    """Read the values ``(N, K)`` int32 back out of any packed layout through its own
    matmul on ``device``: with scale 1 and zero 8 each weight dequantizes to its value, and
    the identity picks every one out exactly (each output is one product of small integers,
    exact in bf16). Costs one ``K × K × N`` matmul: cheap on a GPU, slow on a CPU."""
    ones = torch.ones(k // group_size, n, dtype=torch.bfloat16, device=device)  # (K/g, N)
    neutral = torch.stack([ones, ones * INT4_MIDPOINT], dim=-1)  # (K/g, N, 2)
    identity = torch.eye(k, dtype=torch.bfloat16, device=device)  # (K, K)
    out = kernel(identity, neutral)  # (K, N): row k holds W[:, k]
    return out.T.round().to(torch.int32).contiguous()  # (N, K)


def cpu_values(packed: torch.Tensor, n: int, k: int) -> torch.Tensor:
    """Inverse of ``cpu.pack_int4`` on this build: ``(N, K/2)`` uint8 → ``(N, K)`` int32.

    aten lays the packing out as blocks of output rows, each ``[K][rows / 2]`` bytes with
    two rows of the block in each byte. Which rows share which byte is read off the packer
    with ``K = 2`` probes (:func:`_cpu_row_slots`); the values found are packed again and
    compared, so a layout this reading gets wrong raises instead of returning wrong weights.
    """
    if packed.is_meta:
        return torch.empty(n, k, dtype=torch.int32, device="meta")
    start, step, offset, shift = _cpu_row_slots(n)  # each (N, 1)
    columns = torch.arange(k)[None, :]  # (1, K)
    byte = start * (k // 2) + columns * step + offset  # (N, K) flat byte of each value
    values = ((packed.reshape(-1)[byte] >> shift) & 15).to(torch.int32)  # (N, K)
    if not torch.equal(cpu.pack_int4(values), packed):
        raise ConfigError(
            "this torch build packs INT4 weights for the CPU in a layout memlens cannot "
            "read back; move the model before compressing it, or report the torch version"
        )
    return values


def _cpu_row_slots(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each output row of an ``(n, K)`` CPU-packed weight: the first row of its block,
    the bytes between consecutive ``k``, its byte within a ``k`` row and its nibble's shift
    (each ``(n, 1)`` int64), read off packings of ``(n, 2)`` probes."""
    rows = torch.arange(n)  # (n,)
    digits = max(1, (max(n - 1, 1).bit_length() + 3) // 4)
    slot_row = torch.zeros(2 * n, dtype=torch.int64)  # the row of each nibble slot
    for d in range(digits):
        probe = ((rows >> (4 * d)) & 15)[:, None].expand(n, 2)  # (n, 2)
        slot_row |= _slots(probe) << (4 * d)
    slot_k = _slots(torch.arange(2)[None, :].expand(n, 2))  # (2n,) the column of each slot
    slot = torch.arange(2 * n)
    first = torch.empty(n, dtype=torch.int64)
    second = torch.empty(n, dtype=torch.int64)
    first[slot_row[slot_k == 0]] = slot[slot_k == 0]
    second[slot_row[slot_k == 1]] = slot[slot_k == 1]
    step = second // 2 - first // 2  # bytes from k to k + 1 within a block
    block = 2 * int(step.max())  # rows per full block
    start = rows // block * block
    offset = first // 2 - start  # at K = 2 a block of r rows starts at byte r_0
    shift = 4 * (first % 2)
    return start[:, None], step[:, None], offset[:, None], shift[:, None]


def _slots(probe: torch.Tensor) -> torch.Tensor:
    """The nibble values of ``cpu.pack_int4(probe)`` in slot order (low, then high)."""
    packed = cpu.pack_int4(probe.contiguous()).reshape(-1).to(torch.int64)  # (n,) bytes
    return torch.stack([packed & 15, packed >> 4], dim=-1).reshape(-1)  # (2n,)
