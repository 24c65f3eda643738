"""Typed, versioned configs for the compressed KV cache (they end up in session files and
reports) and the ``--kv`` text syntax, parsed here for the CLI and the worker alike:
storage (:class:`KVCacheConfig`) and eviction under a budget (:class:`SinkWindowEviction`,
:class:`HeavyHitterEviction`). Imports no torch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from memlens.errors import ConfigError, UsageError

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
    the attention probabilities (see ``memlens.engine.kv.cache.track_attention``)."""

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
    """How ``memlens.engine.kv.cache.CompressedKVCache`` stores keys and values.

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
