"""How an INT4 layer follows its module across devices: one stored form, re-packed for
the kernel of the device it moves to.

The stored form (checkpoints, ``state_dict``, the bytes ``memlens estimate`` counts) is
aten's CPU packing. Moving the layer to a CUDA device re-packs the 4-bit values into
tinygemm's layout there (the same ``N·K/2`` bytes); moving it back, or saving its state,
gives the CPU packing again. Scales and zeros are shared by both kernels as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Self

import torch
from torch import nn

from memlens.kernels import int4_values, pack_int4, uses_cuda_int4_layout


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
        if uses_cuda_int4_layout(self.packed.device):
            destination[prefix + "packed"] = pack_int4(self._values(), torch.device("cpu"))

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
        if uses_cuda_int4_layout(self.packed.device) and isinstance(stored, torch.Tensor):
            values = int4_values(stored, self.out_features, self.in_features, self.group_size)
            state_dict = {**state_dict, key: pack_int4(values, self.packed.device)}
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
