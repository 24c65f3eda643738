"""How an INT4 layer follows its module across devices: one stored form, re-packed for
the kernel of the device it moves to.

In memory the layer holds its 4-bit values packed for the kernel of its device: aten's CPU
packing (whose byte order differs between CPU builds: AVX-512, AVX2 and the plain path
each lay it out their own way) or tinygemm's CUDA layout, the same ``N·K/2`` bytes either
way. Its state (``state_dict``, checkpoints) holds the portable form instead, two values
per byte in :func:`memlens.kernels.formats.pack_int4`'s order, so a checkpoint written on
one machine reads the same on any other; loading packs it for the layer's device. Scales
and zeros are shared by both kernels as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Self

import torch
from torch import nn

from memlens.kernels import formats, int4_values, pack_int4, uses_cuda_int4_layout


class Int4DevicePacking(nn.Module):
    """Mixin for a layer with an INT4 buffer ``packed`` of an ``(out_features,
    in_features)`` weight in groups of ``group_size``."""

    packed: torch.Tensor
    in_features: int
    out_features: int
    group_size: int

    def _values(self) -> torch.Tensor:
        return int4_values(self.packed, self.out_features, self.in_features, self.group_size)

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> Self:
        source = self.packed.device
        target = fn(torch.empty(0, dtype=torch.uint8, device=source)).device  # where fn moves ints
        if uses_cuda_int4_layout(source) == uses_cuda_int4_layout(target):
            super()._apply(fn, recurse)  # type: ignore[no-untyped-call]  # torch leaves it untyped
            return self
        values = self._values()  # (out, in) int32, read in the source's layout
        self.packed = torch.empty(0, dtype=torch.uint8, device=source)  # not moved twice
        super()._apply(fn, recurse)  # type: ignore[no-untyped-call]
        self.packed = pack_int4(fn(values), target)
        return self

    def _save_to_state_dict(
        self, destination: dict[str, Any], prefix: str, keep_vars: bool
    ) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if not self.packed.is_meta:
            destination[prefix + "packed"] = portable_int4(self._values())

    def _load_from_state_dict(
        self,
        state_dict: Mapping[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        key = prefix + "packed"
        stored = state_dict.get(key)
        if isinstance(stored, torch.Tensor) and not stored.is_meta:
            # a layer built on the meta device (a checkpoint's skeleton) takes the stored
            # tensor's device, as load_state_dict(assign=True) would
            device = stored.device if self.packed.is_meta else self.packed.device
            values = formats.unpack_int4(stored).to(torch.int32)
            state_dict = {**state_dict, key: pack_int4(values, device)}
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


def portable_int4(values: torch.Tensor) -> torch.Tensor:
    """INT4 values ``(N, K)`` in [0, 15] → the stored form: ``(N, K/2)`` uint8 on the CPU."""
    return formats.pack_int4(values.cpu().to(torch.uint8))
