"""Typed, versioned configs for compressing weights (they end up in checkpoints).

Three kinds:

- a *scheme* config converts one Linear (:class:`Int8WeightConfig`,
  :class:`Int4WeightConfig`, :class:`LowRankWeightConfig`);
- :class:`MixedWeightConfig` picks a scheme per module name by glob pattern;
- :class:`AutoWeightConfig` lets a sensitivity analysis on calibration text pick the scheme
  per layer (``memlens/engine/sensitivity.py``) and resolves to a ``MixedWeightConfig``.

Each class names its ``scheme`` and registers itself, so :func:`config_from_json` reads
back what :func:`config_to_json` wrote without guessing.
"""

from __future__ import annotations

import dataclasses
import math
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
class Int4WeightConfig(WeightConfig):
    """INT4 weight-only, asymmetric per group of ``group_size`` input features."""

    scheme: ClassVar[str] = "int4"
    group_size: int = 128
    """Input features per scale/zero pair: 32, 64 or 128."""

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
    """The CLI's ``--weights``: ``int8``, ``int4[:g64]``, ``lowrank[:0.99]``, ``auto``."""
    name, _, option = text.strip().lower().partition(":")
    try:
        if name == "int8" and not option:
            return Int8WeightConfig()
        if name == "int4":
            return Int4WeightConfig(group_size=int(option.removeprefix("g") or 128))
        if name == "lowrank":
            return LowRankWeightConfig(energy=float(option or 0.99))
        if name == "auto" and not option:
            return AutoWeightConfig()
    except ValueError:
        pass
    raise UsageError(f"--weights {text!r}: use int8, int4[:g32|g64|g128], lowrank[:ENERGY] or auto")


# --- KV cache -----------------------------------------------------------------------------

KV_CONFIG_VERSION = 1
KV_BITS = (8, 4)
"""Bit widths the compressed KV cache stores (``None`` keeps full precision)."""


@dataclass(frozen=True)
class SinkWindowEviction:
    """StreamingLLM: keep the first ``sinks`` tokens (attention sinks) and the most recent
    ``window`` tokens; evict the rest."""

    policy: ClassVar[str] = "sinks"
    sinks: int = 4
    """Tokens kept from the start of the sequence."""
    window: int = 508
    """Most recent tokens kept."""

    def __post_init__(self) -> None:
        if self.sinks < 0 or self.window < 1:
            raise UsageError(
                f"sinks must be ≥ 0 and window ≥ 1 tokens, got sinks {self.sinks}, "
                f"window {self.window}"
            )

    def budget(self, seen: int) -> int:
        """Tokens the cache keeps once ``seen`` tokens went through it."""
        return self.sinks + self.window

    def label(self) -> str:
        """CLI syntax, e.g. ``sinks:4+window:508``."""
        return f"sinks:{self.sinks}+window:{self.window}"


@dataclass(frozen=True)
class HeavyHitterEviction:
    """H2O: keep the ``recent`` share of the budget as the most recent tokens and fill
    the rest, per head, with the tokens that received the most attention so far. Needs
    the attention probabilities (see ``memlens.engine.kvcache.track_attention``)."""

    policy: ClassVar[str] = "h2o"
    budget_tokens: int | None = None
    """Fixed budget in tokens; exactly one of this and ``budget_fraction``."""
    budget_fraction: float | None = None
    """Budget as a fraction (0, 1) of the tokens seen so far (H2O's ratio)."""
    recent: float = 0.5
    """Share of the budget (0, 1] kept as the most recent tokens."""

    def __post_init__(self) -> None:
        if (self.budget_tokens is None) == (self.budget_fraction is None):
            raise UsageError("h2o needs exactly one budget: a token count or a fraction")
        if self.budget_tokens is not None and self.budget_tokens < 2:
            raise UsageError(f"the h2o budget must be at least 2 tokens, got {self.budget_tokens}")
        if self.budget_fraction is not None and not 0 < self.budget_fraction < 1:
            raise UsageError(
                f"the h2o budget fraction must be in (0, 1), got {self.budget_fraction}"
            )
        if not 0 < self.recent <= 1:
            raise UsageError(f"the h2o recent share must be in (0, 1], got {self.recent}")

    def budget(self, seen: int) -> int:
        """Tokens the cache keeps once ``seen`` tokens went through it (at least 2)."""
        if self.budget_tokens is not None:
            return self.budget_tokens
        return max(2, math.ceil(seen * (self.budget_fraction or 0)))

    def recent_tokens(self, budget: int) -> int:
        """Of ``budget`` tokens, how many are the most recent ones (at least 1)."""
        return max(1, min(budget, round(budget * self.recent)))

    def label(self) -> str:
        """CLI syntax, e.g. ``h2o:0.25`` or ``h2o:1024``."""
        return (
            f"h2o:{self.budget_fraction:g}"
            if self.budget_tokens is None
            else f"h2o:{self.budget_tokens}"
        )


Eviction = SinkWindowEviction | HeavyHitterEviction
_EVICTIONS: dict[str, type[SinkWindowEviction] | type[HeavyHitterEviction]] = {
    "sinks": SinkWindowEviction,
    "h2o": HeavyHitterEviction,
}


@dataclass(frozen=True)
class KVCacheConfig:
    """How ``memlens.engine.kvcache.CompressedKVCache`` stores keys and values.

    As KIVI does, keys are quantized per channel (each group spans ``group_size`` tokens
    of one channel) and values per token (each group spans ``group_size`` channels of one
    token, or the whole head when it is narrower). The most recent ``residual_tokens``
    stay in full precision; older tokens are quantized in blocks of ``group_size``, so
    between ``residual_tokens`` and ``residual_tokens + group_size - 1`` tokens are full
    precision at any time. Scales and minimums are stored in float16; a layer whose
    scales or minimums exceed float16's range (±65504) keeps them in float32 from then on.
    """

    bits: int | None = 8
    """8 or 4 bits per stored element; None keeps keys and values in full precision."""
    group_size: int = 128
    """Tokens per key group and channels per value group (the whole head when narrower).
    Each group stores a float16 scale and minimum: 4 bytes per group (8 in float32)."""
    residual_tokens: int = 0
    """Most recent tokens kept in full precision beyond the block being filled (KIVI keeps
    32–128 for 2-bit keys; at 8 and 4 bits the fixture's perplexity did not need any,
    see ``benchmarks/engine_kv.py``)."""
    eviction: Eviction | None = None
    """Which tokens to drop under a budget; None keeps every token."""
    version: int = KV_CONFIG_VERSION

    def __post_init__(self) -> None:
        if self.bits is not None and self.bits not in KV_BITS:
            raise UsageError(
                f"KV cache bits must be 8, 4 or None (full precision), got {self.bits}"
            )
        if self.group_size < 2 or self.group_size % 2:
            raise UsageError(f"the KV group size must be an even number ≥ 2, got {self.group_size}")
        if self.residual_tokens < 0:
            raise UsageError(f"residual tokens must be ≥ 0, got {self.residual_tokens}")

    def label(self) -> str:
        """CLI syntax that :func:`parse_kv` reads back, e.g. ``int4:g32:r128,h2o:0.25``."""
        head = (
            "fp"
            if self.bits is None
            else f"int{self.bits}:g{self.group_size}:r{self.residual_tokens}"
        )
        return head if self.eviction is None else f"{head},{self.eviction.label()}"


def kv_config_to_json(config: KVCacheConfig) -> dict[str, Any]:
    """A JSON-ready dict; the eviction policy is named by its ``policy``."""
    data = dataclasses.asdict(config)
    if config.eviction is not None:
        data["eviction"] = {"policy": config.eviction.policy, **data["eviction"]}
    return data


def kv_config_from_json(data: Any) -> KVCacheConfig:
    """The inverse of :func:`kv_config_to_json`; ConfigError for anything else."""
    if not isinstance(data, dict) or "bits" not in data:
        raise ConfigError(f"not a memlens KV cache config: {str(data)[:80]}")
    if data.get("version") != KV_CONFIG_VERSION:
        raise ConfigError(
            f"KV cache config version {data.get('version')}; this memlens reads {KV_CONFIG_VERSION}"
        )
    values = dict(data)
    try:
        eviction = values.pop("eviction", None)
        if eviction is not None:
            options = dict(eviction)
            values["eviction"] = _EVICTIONS[options.pop("policy")](**options)
        return KVCacheConfig(**values)
    except (TypeError, ValueError, KeyError, UsageError) as exc:
        raise ConfigError(f"bad KV cache config: {exc}") from None


_KV_SYNTAX = (
    "use [int8|int4|fp][:gN][:rN] and/or an eviction policy, comma-separated, e.g. int8, "
    "int4:g32:r128, sinks:4+window:508, int8,h2o:0.25, h2o:1024"
)


def parse_kv(text: str) -> KVCacheConfig:
    """The CLI's ``--kv``: a storage part (``int8``, ``int4:g32``, ``int4:r128``, ``fp``)
    and/or an eviction part (``sinks:4+window:508``, ``h2o:0.25``, ``h2o:1024``), joined
    by a comma. Eviction alone keeps full precision."""
    parts = [part.strip() for part in text.strip().lower().split(",")]
    storage = [p for p in parts if p.partition(":")[0] in ("int8", "int4", "fp")]
    policies = [p for p in parts if p not in storage]
    if not parts or len(storage) > 1 or len(policies) > 1 or not all(parts):
        raise UsageError(f"--kv {text!r}: {_KV_SYNTAX}")
    try:
        options: dict[str, Any] = _parse_storage(storage[0]) if storage else {"bits": None}
        if policies:
            options["eviction"] = _parse_eviction(policies[0])
    except ValueError:
        raise UsageError(f"--kv {text!r}: {_KV_SYNTAX}") from None
    return KVCacheConfig(**options)


def _parse_storage(text: str) -> dict[str, Any]:
    name, *fields = text.split(":")
    options: dict[str, Any] = {"bits": None if name == "fp" else int(name.removeprefix("int"))}
    for item in fields:
        key = {"g": "group_size", "r": "residual_tokens"}.get(item[:1])
        if key is None or key in options:
            raise ValueError(item)
        options[key] = int(item[1:])
    return options


def _parse_eviction(text: str) -> Eviction:
    if text.startswith("h2o:"):
        amount = text.removeprefix("h2o:")
        if amount.isdigit():
            return HeavyHitterEviction(budget_tokens=int(amount))
        return HeavyHitterEviction(budget_fraction=float(amount))
    sinks, plus, window = text.partition("+")
    if not plus or not sinks.startswith("sinks:") or not window.startswith("window:"):
        raise ValueError(text)
    return SinkWindowEviction(
        int(sinks.removeprefix("sinks:")), int(window.removeprefix("window:"))
    )
