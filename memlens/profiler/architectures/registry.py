"""Architecture families register an analytic describer for their ``model_type``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from memlens.errors import ConfigError, UnsupportedArchitectureError
from memlens.profiler.architectures.config_view import ConfigView
from memlens.profiler.architectures.spec import ArchitectureSpec, base_model

Describer = Callable[[ConfigView], ArchitectureSpec]
_DESCRIBERS: dict[str, Describer] = {}


def register(*model_types: str) -> Callable[[Describer], Describer]:
    """Decorator: ``describer`` builds the ArchitectureSpec for these ``model_type`` values."""

    def add(describer: Describer) -> Describer:
        for model_type in model_types:
            _DESCRIBERS[model_type] = describer
        return describer

    return add


def supported_model_types() -> list[str]:
    """The ``model_type`` values the analytic estimator describes."""
    return sorted(_DESCRIBERS)


def describe(
    config: Mapping[str, Any], source: str = "config.json", *, bare: bool = False
) -> ArchitectureSpec:
    """The analytic ArchitectureSpec of a config dict: of the class its ``architectures``
    names, or with ``bare``, of the bare model ``AutoModel`` builds (no task head,
    whatever class ``architectures`` names).

    Raises UnsupportedArchitectureError when no family describes its ``model_type`` and
    ConfigError when a field the family needs is missing or malformed.
    """
    view = ConfigView(config, source)
    if "model_type" not in config:
        raise ConfigError(f"{source}: has no 'model_type' field; is this a transformers config?")
    describer = _DESCRIBERS.get(view.model_type)
    if describer is None:
        raise UnsupportedArchitectureError(
            f"no analytic formulas for model_type {view.model_type!r} "
            f"(supported: {', '.join(supported_model_types())})"
        )
    if not bare:
        return describer(view)
    return base_model(describer(ConfigView({**config, "architectures": None}, source)))
