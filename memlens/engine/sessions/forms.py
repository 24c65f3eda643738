"""A session's KV cache at rest: full precision (hot) or group-wise quantized (warm).

Both hold, per decoder layer, keys and values of shape ``(1, H, T, D)`` (batch one,
``H`` KV heads, ``T`` tokens, head dimension ``D``). The warm form reuses the KV-cache
quantizer of ``memlens/kernels/formats.py`` (:func:`quantize_groups`, groups along
``D``) and its INT4 packing (two values per byte).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from memlens.kernels.formats import (
    dequantize_groups,
    pack_int4,
    quantize_groups,
    unpack_int4,
)

LayerKV = tuple[torch.Tensor, torch.Tensor]
"""Keys and values of one layer, each ``(1, H, T, D)``."""


@dataclass(frozen=True)
class FullKV:
    """Full-precision keys and values per layer (the hot tier)."""

    layers: tuple[LayerKV, ...]

    @property
    def tokens(self) -> int:
        """Tokens held (the ``T`` of every tensor)."""
        return int(self.layers[0][0].shape[-2]) if self.layers else 0

    @property
    def nbytes(self) -> int:
        """Bytes of all tensors."""
        return sum(k.nbytes + v.nbytes for k, v in self.layers)

    @property
    def bytes_per_token(self) -> int:
        """Bytes one more token adds (all layers, keys and values: ``2 * H * D`` values
        each per layer), whatever ``T`` is now."""
        return sum(2 * k.shape[1] * k.shape[3] * k.element_size() for k, _ in self.layers)

    def span(self, start: int, stop: int | None = None) -> FullKV:
        """Tokens ``[start, stop)`` as tensors of their own (a copy, so the rest is freed)."""
        return FullKV(  # (1, H, stop - start, D) per layer
            tuple(
                (k[:, :, start:stop].clone(), v[:, :, start:stop].clone()) for k, v in self.layers
            )
        )

    @staticmethod
    def concat(parts: Sequence[FullKV]) -> FullKV:
        """Parts one after the other along the token axis (new tensors)."""
        layers = zip(*(part.layers for part in parts), strict=True)
        return FullKV(  # (1, H, sum of the parts' T, D) per layer
            tuple(
                (torch.cat([k for k, _ in kv], dim=-2), torch.cat([v for _, v in kv], dim=-2))
                for kv in layers
            )
        )

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """Named tensors for a safetensors file."""
        named: dict[str, torch.Tensor] = {}
        for i, (k, v) in enumerate(self.layers):
            named[f"layers.{i}.keys"] = k.contiguous()
            named[f"layers.{i}.values"] = v.contiguous()
        return named

    @staticmethod
    def from_tensors(named: dict[str, torch.Tensor], num_layers: int) -> FullKV:
        """Inverse of :meth:`to_tensors`; KeyError when a tensor is missing."""
        return FullKV(
            tuple(
                (named[f"layers.{i}.keys"], named[f"layers.{i}.values"]) for i in range(num_layers)
            )
        )


@dataclass(frozen=True)
class QuantizedTensor:
    """One ``(1, H, T, D)`` tensor as ``quantize_groups`` returns it, INT4 packed."""

    values: torch.Tensor
    """uint8 ``(1, H, T, D)`` at 8 bits, ``(1, H, T, D/2)`` at 4 bits (``pack_int4``)."""
    scale: torch.Tensor
    """float32 ``(1, H, T, D/g)``."""
    low: torch.Tensor
    """float32 ``(1, H, T, D/g)``: each group's minimum."""

    @property
    def nbytes(self) -> int:
        """Bytes of values, scales and minimums."""
        return self.values.nbytes + self.scale.nbytes + self.low.nbytes

    @staticmethod
    def of(x: torch.Tensor, bits: Literal[8, 4], group_size: int) -> QuantizedTensor:
        """``x (1, H, T, D)`` quantized in groups of ``group_size`` values along ``D``."""
        q, scale, low = quantize_groups(x, bits, group_size)  # q (1, H, T, D) uint8
        return QuantizedTensor(pack_int4(q) if bits == 4 else q, scale, low)

    def dequantize(self, bits: int, group_size: int, dtype: torch.dtype) -> torch.Tensor:
        """The ``(1, H, T, D)`` tensor of ``dtype`` these values approximate."""
        q = unpack_int4(self.values) if bits == 4 else self.values  # (1, H, T, D)
        return dequantize_groups(q, self.scale, self.low, group_size, dtype)


_PARTS = ("values", "scale", "low")


@dataclass(frozen=True)
class QuantizedKV:
    """Group-wise quantized keys and values per layer (the warm tier)."""

    bits: Literal[8, 4]
    group_size: int
    dtype: torch.dtype
    """The dtype the tensors are restored to (the model's KV dtype)."""
    layers: tuple[tuple[QuantizedTensor, QuantizedTensor], ...]

    @property
    def tokens(self) -> int:
        """Tokens held (the ``T`` of every scale ``(1, H, T, D/g)``)."""
        return int(self.layers[0][0].scale.shape[-2]) if self.layers else 0

    @property
    def nbytes(self) -> int:
        """Bytes of all values, scales and minimums."""
        return sum(k.nbytes + v.nbytes for k, v in self.layers)

    @staticmethod
    def of(full: FullKV, bits: Literal[8, 4], group_size: int) -> QuantizedKV:
        """``full`` quantized to ``bits`` in groups of ``group_size`` along ``D``."""
        dtype = full.layers[0][0].dtype if full.layers else torch.float32
        layers = tuple(
            (QuantizedTensor.of(k, bits, group_size), QuantizedTensor.of(v, bits, group_size))
            for k, v in full.layers
        )
        return QuantizedKV(bits, group_size, dtype, layers)

    def dequantize(self) -> FullKV:
        """Full-precision keys and values again (of :attr:`dtype`; new tensors)."""
        bits, group, dtype = self.bits, self.group_size, self.dtype
        return FullKV(
            tuple(
                (k.dequantize(bits, group, dtype), v.dequantize(bits, group, dtype))
                for k, v in self.layers
            )
        )

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """Named tensors for a safetensors file."""
        named: dict[str, torch.Tensor] = {}
        for i, pair in enumerate(self.layers):
            for which, tensor in zip(("keys", "values"), pair, strict=True):
                for part in _PARTS:
                    named[f"layers.{i}.{which}.{part}"] = getattr(tensor, part).contiguous()
        return named

    @staticmethod
    def from_tensors(
        named: dict[str, torch.Tensor],
        num_layers: int,
        bits: Literal[8, 4],
        group_size: int,
        dtype: torch.dtype,
    ) -> QuantizedKV:
        """Inverse of :meth:`to_tensors`; KeyError when a tensor is missing."""

        def tensor(i: int, which: str) -> QuantizedTensor:
            return QuantizedTensor(*(named[f"layers.{i}.{which}.{part}"] for part in _PARTS))

        layers = tuple((tensor(i, "keys"), tensor(i, "values")) for i in range(num_layers))
        return QuantizedKV(bits, group_size, dtype, layers)


SessionKV = FullKV | QuantizedKV
"""A session's own KV cache in memory, hot or warm."""
