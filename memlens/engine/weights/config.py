"""Typed, versioned configs for compressing weights (they end up in checkpoints).

Three kinds:

- a *scheme* config converts one Linear (:class:`Int8WeightConfig`,
  :class:`Int4WeightConfig`, :class:`LowRankWeightConfig`);
- :class:`MixedWeightConfig` picks a scheme per module name by glob pattern;
- :class:`AutoWeightConfig` lets a sensitivity analysis on calibration text pick the scheme
  per layer (``memlens/engine/weights/sensitivity.py``) and resolves to a ``MixedWeightConfig``.

Each class names its ``scheme`` and registers itself, so :func:`config_from_json` reads
back what :func:`config_to_json` wrote without guessing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from memlens.errors import ConfigError, UsageError
from memlens.profiler.tensors import check_group_size

CONFIG_VERSION = 2
_REGISTRY: dict[str, type[WeightConfig]] = {}


@dataclass(frozen=True)
class WeightConfig:
    """What every weight config shares."""

    scheme: ClassVar[str] = ""
    skip: tuple[str, ...] = ()
    """``fnmatch`` patterns of module names left as they are (e.g. ``("lm_head",)``); by
    default every Linear is compressed, as ``memlens estimate`` assumes."""
    version: int = CONFIG_VERSION

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "scheme" in cls.__dict__:  # a subclass that names no scheme of its own is not one
            _REGISTRY[cls.scheme] = cls

    def label(self) -> str:
        """Short human name, e.g. ``int4:g64`` (the CLI's ``--weights`` syntax)."""
        return self.scheme


@dataclass(frozen=True)
class Int8WeightConfig(WeightConfig):
    """INT8 weight-only, symmetric per output channel, bf16 scales."""

    scheme: ClassVar[str] = "int8"


@dataclass(frozen=True)
class Int8DynWeightConfig(WeightConfig):
    """INT8 weights (per output channel) times INT8 activations quantized per call
    (``int8-dyn``): the fastest INT8 path on AVX2 CPUs, with its own error (activations
    are rounded too; measured in ``benchmarks/engine_weights.py``)."""

    scheme: ClassVar[str] = "int8-dyn"


@dataclass(frozen=True)
class Int4WeightConfig(WeightConfig):
    """INT4 weight-only, asymmetric per group of ``group_size`` input features."""

    scheme: ClassVar[str] = "int4"
    group_size: int = 128
    """Input features per scale/zero pair: 32, 64 or 128. A layer whose input width this
    does not divide takes the largest of these below it that does (SmolLM2's 576 with 128
    → 64); one that none divides is stored INT8."""

    def __post_init__(self) -> None:
        check_group_size(self.group_size)

    def label(self) -> str:
        return f"int4:g{self.group_size}"


@dataclass(frozen=True)
class LowRankWeightConfig(WeightConfig):
    """Truncated SVD ``W ≈ B @ A`` stored in bf16.

    The rank is the smallest that keeps ``energy`` of the squared singular values, or,
    when ``max_error`` is set and calibration inputs are given, the smallest whose relative
    output error on them is at most ``max_error``. A layer whose factors would not be
    smaller than the dense bf16 weight stays dense.
    """

    scheme: ClassVar[str] = "lowrank"
    energy: float = 0.99
    """Fraction (0, 1] of the weight's squared singular values kept."""
    max_error: float | None = None
    """Relative output error target (e.g. 0.02); needs calibration inputs."""

    def __post_init__(self) -> None:
        if not 0 < self.energy <= 1:
            raise UsageError(f"low-rank energy must be in (0, 1], got {self.energy}")
        if self.max_error is not None and not 0 < self.max_error < 1:
            raise UsageError(f"low-rank max_error must be in (0, 1), got {self.max_error}")

    def label(self) -> str:
        return f"lowrank:{self.energy:g}" if self.max_error is None else "lowrank:err"


@dataclass(frozen=True)
class MixedWeightConfig(WeightConfig):
    """A scheme per module: the first ``(pattern, config)`` in ``overrides`` whose
    ``fnmatch`` pattern matches the name wins, else ``default``. ``None`` keeps a module
    as it is."""

    scheme: ClassVar[str] = "mixed"
    default: WeightConfig | None = None
    overrides: tuple[tuple[str, WeightConfig | None], ...] = ()


@dataclass(frozen=True)
class AutoWeightConfig(WeightConfig):
    """Per layer, the cheapest candidate whose relative output error on calibration
    inputs is at most ``max_error``; or, with ``budget_bytes``, the most accurate plan
    whose weights fit the budget. ``lm_head`` follows its own explicit setting."""

    scheme: ClassVar[str] = "auto"
    max_error: float | None = 0.02
    """Relative output error allowed per layer (used when ``budget_bytes`` is None)."""
    budget_bytes: int | None = None
    """Bytes all weights (compressed or not) may take; overrides ``max_error``."""
    candidates: tuple[WeightConfig, ...] = field(
        default_factory=lambda: (
            Int4WeightConfig(group_size=64),
            Int4WeightConfig(group_size=32),
            Int8WeightConfig(),
            LowRankWeightConfig(energy=0.95),
        )
    )
    lm_head: WeightConfig | None = field(default_factory=Int8WeightConfig)
    """What the LM head gets (the most sensitive layer); None keeps it as it is."""

    def __post_init__(self) -> None:
        if self.budget_bytes is None and self.max_error is None:
            raise UsageError("auto needs an error target or a byte budget")
        if self.budget_bytes is not None and self.budget_bytes <= 0:
            raise UsageError(f"the byte budget must be positive, got {self.budget_bytes}")
        if self.max_error is not None and not 0 < self.max_error < 1:
            raise UsageError(f"max_error must be in (0, 1), got {self.max_error}")
        if not self.candidates:
            raise UsageError("auto needs at least one candidate scheme")


def config_to_json(config: WeightConfig | None) -> dict[str, Any] | None:
    """A JSON-ready dict naming the scheme, nested configs included."""
    if config is None:
        return None
    data: dict[str, Any] = {"scheme": config.scheme}
    for item in dataclasses.fields(config):
        data[item.name] = _value_to_json(getattr(config, item.name))
    return data


def _value_to_json(value: Any) -> Any:
    if isinstance(value, WeightConfig):
        return config_to_json(value)
    if isinstance(value, tuple):
        return [_value_to_json(item) for item in value]
    return value


def config_from_json(data: Any) -> WeightConfig:
    """The inverse of :func:`config_to_json`; ConfigError for anything else."""
    if not isinstance(data, dict) or data.get("scheme") not in _REGISTRY:
        raise ConfigError(f"not a memlens weight config: {str(data)[:80]}")
    if data.get("version") != CONFIG_VERSION:
        raise ConfigError(
            f"weight config version {data.get('version')}; this memlens reads {CONFIG_VERSION}"
        )
    cls = _REGISTRY[data["scheme"]]
    values: dict[str, Any] = {}
    try:
        for item in dataclasses.fields(cls):
            if item.name in data:
                values[item.name] = _value_from_json(item.name, data[item.name])
        return cls(**values)
    except (TypeError, ValueError, UsageError) as exc:
        raise ConfigError(f"bad {cls.scheme} weight config: {exc}") from None


def _value_from_json(name: str, value: Any) -> Any:
    if name in ("default", "lm_head"):
        return None if value is None else config_from_json(value)
    if name == "candidates":
        return tuple(config_from_json(item) for item in value)
    if name == "overrides":
        return tuple(
            (str(pattern), None if inner is None else config_from_json(inner))
            for pattern, inner in value
        )
    if name == "skip":
        return tuple(str(item) for item in value)
    return value


def parse_weights(text: str) -> WeightConfig:
    """The CLI's ``--weights``: ``int8``, ``int8-dyn``, ``int4[:g64]``, ``lowrank[:0.99]``,
    ``auto``."""
    name, _, option = text.strip().lower().partition(":")
    try:
        if name == "int8" and not option:
            return Int8WeightConfig()
        if name == "int8-dyn" and not option:
            return Int8DynWeightConfig()
        if name == "int4":
            return Int4WeightConfig(group_size=int(option.removeprefix("g") or 128))
        if name == "lowrank":
            return LowRankWeightConfig(energy=float(option or 0.99))
        if name == "auto" and not option:
            return AutoWeightConfig()
    except ValueError:
        pass
    raise UsageError(
        f"--weights {text!r}: use int8, int8-dyn, int4[:g32|g64|g128], lowrank[:ENERGY] or auto"
    )
