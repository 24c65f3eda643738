"""Typed, versioned configs for compressing weights (they end up in checkpoints)."""

from __future__ import annotations

from dataclasses import dataclass

from memlens.profiler.tensors import check_group_size

CONFIG_VERSION = 1


@dataclass(frozen=True)
class WeightConfig:
    """What every weight scheme shares."""

    skip: tuple[str, ...] = ()
    """``fnmatch`` patterns of module names left as they are (e.g. ``("lm_head",)``); by
    default every Linear is compressed, as ``memlens estimate`` assumes."""
    version: int = CONFIG_VERSION


@dataclass(frozen=True)
class Int8WeightConfig(WeightConfig):
    """INT8 weight-only, symmetric per output channel, bf16 scales."""


@dataclass(frozen=True)
class Int4WeightConfig(WeightConfig):
    """INT4 weight-only, asymmetric per group of ``group_size`` input features."""

    group_size: int = 128
    """Input features per scale/zero pair: 32, 64 or 128."""

    def __post_init__(self) -> None:
        check_group_size(self.group_size)
