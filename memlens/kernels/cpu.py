"""CPU fast paths through aten's packed-weight kernels.

``_weight_int8pack_mm`` wants scales in the activation dtype; the int4 kernel wants the
weight packed by ``_convert_weight_to_int4pack_for_cpu`` and scales/zeros as one
``(K/g, N, 2)`` tensor in the activation dtype. Both are fastest with bf16 activations
(measured: fp32 activations take the slow path).

``int8-dyn`` runs fbgemm's INT8×INT8 dynamic linear (the kernel ``quantize_dynamic`` uses):
the weight lives only in fbgemm's packed form, activations are quantized per call to 7
bits (``formats.quantize_int8_dyn_activations``; with 8 bits, AVX2's u8×s8 pair sums
saturate: measured 12% output error instead of 1.4%). On AVX2 CPUs without AVX-512 BF16
this is the fastest INT8 path (measured per layer, 5632×2048, one thread: fbgemm 2.8 ms,
``_weight_int8pack_mm`` with bf16 activations 5.5 ms, with fp32 activations 32.6 ms).
"""

from __future__ import annotations

import warnings

import torch

_INNER_K_TILES = 1  # the CPU packer ignores tiling but requires the argument


INT8_K_MULTIPLE = 8
"""``_weight_int8pack_mm`` reads K in blocks of 8: other K crash or go wrong for M > 1."""


INT8_ALIGNMENT = 64
"""Bytes the weight's address must be a multiple of: on AVX-512 CPUs the kernel crashes the
process (segmentation fault) on a weight that starts 8 bytes off, as safetensors' reader
leaves tensors after a header of arbitrary length."""


def int8_fits(q: torch.Tensor) -> bool:
    """Whether the packed kernel can take this weight."""
    return q.shape[1] % INT8_K_MULTIPLE == 0 and q.data_ptr() % INT8_ALIGNMENT == 0


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


def int8_dyn_available() -> bool:
    """Whether fbgemm's dynamic INT8 linear runs here (x86 with the fbgemm or x86
    quantized engine selected; on other CPUs ``int8-dyn`` runs the reference)."""
    return torch.backends.quantized.engine in ("x86", "fbgemm") and hasattr(
        torch.ops.quantized, "linear_dynamic"
    )


def pack_int8_dyn(q: torch.Tensor, scale: torch.Tensor) -> torch.ScriptObject:
    """int8 ``q (N, K)`` with per-channel ``scale (N,)`` → fbgemm's packed weight."""
    zeros = torch.zeros(q.shape[0], dtype=torch.long)
    with warnings.catch_warnings():  # torch deprecates quantized tensors; the packer needs one
        warnings.simplefilter("ignore")
        weight = torch._make_per_channel_quantized_tensor(q, scale.double(), zeros, 0)
    packed: torch.ScriptObject = torch.ops.quantized.linear_prepack(weight, None)
    return packed


def unpack_int8_dyn(packed: torch.ScriptObject) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`pack_int8_dyn`: int8 ``(N, K)`` and float32 scales ``(N,)``."""
    weight, _ = torch.ops.quantized.linear_unpack(packed)
    return weight.int_repr(), weight.q_per_channel_scales().float()


def int8_dyn_matmul(x: torch.Tensor, packed: torch.ScriptObject) -> torch.Tensor:
    """``x (…, K)`` float32 times a packed INT8 weight → ``(…, N)`` float32."""
    out: torch.Tensor = torch.ops.quantized.linear_dynamic(x, packed, True)  # 7-bit inputs
    return out
