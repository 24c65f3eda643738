"""Typed, validated reads from a model's ``config.json`` dictionary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from memlens.errors import ConfigError, UnsupportedArchitectureError

_MISSING: Any = object()
MAX_DIMENSION = 1 << 24
"""No field a model can have is larger (16M); larger values are typos or attacks."""
_STRUCTURAL_LIMITS = {
    "num_hidden_layers": 4096,
    "n_layer": 4096,
    "num_attention_heads": 8192,
    "n_head": 8192,
    "num_key_value_heads": 8192,
    "num_local_experts": 4096,
}


class ConfigView:
    """Reads typed values from a config dict; bad or missing values raise ConfigError."""

    def __init__(self, data: Mapping[str, Any], source: str = "config.json") -> None:
        self.data = data
        self.source = source

    @property
    def model_type(self) -> str:
        """The ``model_type`` field, lower-cased."""
        return self.string("model_type").lower()

    def with_aliases(self, aliases: dict[str, str]) -> ConfigView:
        """A view in which each ``alias → canonical`` key fills the canonical one when it is
        absent (transformers' ``attribute_map``: GPT-2's ``hidden_size`` is ``n_embd``)."""
        extra = {
            c: self.data[a] for a, c in aliases.items() if a in self.data and c not in self.data
        }
        return ConfigView({**self.data, **extra}, self.source) if extra else self

    def check_class(self, model_class: str, *others: str) -> str:
        """The class ``architectures`` names, when the family's formulas cover it.

        A config naming another head (``LlamaForSequenceClassification``) raises
        UnsupportedArchitectureError, so the exact estimator builds the real class.
        """
        named = self.architecture(model_class)
        if named not in (model_class, *others):
            raise UnsupportedArchitectureError(
                f"{self.source}: analytic formulas cover {model_class}, not {named}"
            )
        return named

    def with_defaults(self, **defaults: Any) -> ConfigView:
        """A view in which absent or null ``defaults`` keys take the given values."""
        missing = {k: v for k, v in defaults.items() if self.data.get(k) is None}
        return ConfigView({**self.data, **missing}, self.source) if missing else self

    def has(self, key: str) -> bool:
        """True when ``key`` is present and not null."""
        return self.data.get(key) is not None

    def integer(self, key: str, default: int = _MISSING, *, minimum: int = 1) -> int:
        """An integer field ≥ ``minimum`` (and within sane limits); ``default`` when absent
        or null."""
        value = self.data.get(key)
        if value is None:
            if default is _MISSING:
                raise ConfigError(f"{self.source}: required field {key!r} is missing")
            return default
        maximum = _STRUCTURAL_LIMITS.get(key, MAX_DIMENSION)
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise ConfigError(
                f"{self.source}: field {key!r} must be an integer from {minimum} to {maximum}, "
                f"got {value!r}"
            )
        return value

    def optional_int(self, key: str, default: int | None = None) -> int | None:
        """An integer field ≥ 1, or ``default`` when absent or null."""
        return self.integer(key) if self.has(key) else default

    def nullable_int(self, key: str, default_when_absent: int | None) -> int | None:
        """An integer field ≥ 1 that may be null; ``default_when_absent`` when the key is absent.

        transformers distinguishes the two: Mistral's ``sliding_window`` defaults to 4096
        when the key is missing, but an explicit ``null`` switches it off.
        """
        if key not in self.data:
            return default_when_absent
        return self.optional_int(key)

    def flag(self, key: str, default: bool) -> bool:
        """A boolean field, ``default`` when absent or null."""
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(f"{self.source}: field {key!r} must be true or false, got {value!r}")
        return value

    def string(self, key: str, default: str = _MISSING) -> str:
        """A string field; ``default`` when absent or null."""
        value = self.data.get(key)
        if value is None:
            if default is _MISSING:
                raise ConfigError(f"{self.source}: required field {key!r} is missing")
            return default
        if not isinstance(value, str):
            raise ConfigError(f"{self.source}: field {key!r} must be a string, got {value!r}")
        return value

    def str_list(self, key: str) -> list[str] | None:
        """A list of strings, or None when absent or null."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{self.source}: field {key!r} must be a list of strings")
        return list(value)

    def layer_types(self, num_layers: int) -> list[str] | None:
        """The ``layer_types`` list, checked to have one entry per layer."""
        types = self.str_list("layer_types")
        if types is not None and len(types) != num_layers:
            raise ConfigError(
                f"{self.source}: 'layer_types' has {len(types)} entries for {num_layers} layers"
            )
        return types

    def architecture(self, default: str) -> str:
        """The first entry of ``architectures``, or ``default``."""
        names = self.str_list("architectures")
        return names[0] if names else default
