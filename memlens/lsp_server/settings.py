"""Typed server settings, parsed once from the client's ``memlens.*`` configuration."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from memlens.errors import UsageError
from memlens.tracing import jaeger
from memlens.units import parse_size

log = logging.getLogger(__name__)


@functools.cache
def _machine_budget() -> int:
    from memlens.profiler.machine import default_budget  # psutil: only if no budget is set

    return default_budget()


_MAX_DEVICES = 65536


@dataclass(frozen=True)
class Settings:
    """What the client configured under ``memlens.*``."""

    memory_budget: int | None = None
    """Bytes a model may use; None means the largest visible GPU, else this machine's RAM."""
    hints_enabled: bool = True
    tracing_enabled: bool = False
    collector_port: int = 4318
    jaeger_url: str | None = None
    """A team's Jaeger UI, as :func:`memlens.tracing.jaeger.base_url` accepts it."""
    trusted: bool = True
    """False in an untrusted workspace: static hints only, no worker."""
    training_devices: int = 1
    """Data-parallel devices a training script runs on: with more than 1, a script's
    ``deepspeed=``/``fsdp=`` sharding gives per-device figures."""

    @property
    def budget_bytes(self) -> int:
        """The budget diagnostics check against."""
        return self.memory_budget or _machine_budget()

    @classmethod
    def from_client(cls, data: Mapping[str, Any] | None) -> Settings:
        """Parse ``{"memoryBudget": …, "hints": {"enabled": …}, …}``; a bad value keeps its
        default and is logged, so one typo does not disable the server."""
        data = data or {}
        values: dict[str, Any] = {}
        if (budget := data.get("memoryBudget")) not in (None, "", 0):
            try:
                values["memory_budget"] = parse_size(budget, "memoryBudget")
            except UsageError as exc:
                log.warning("%s", exc)
        for key, path in (
            ("hints_enabled", ("hints", "enabled")),
            ("tracing_enabled", ("tracing", "enabled")),
            ("trusted", ("trusted",)),
        ):
            value = _dig(data, path)
            if isinstance(value, bool):
                values[key] = value
        devices = _dig(data, ("training", "devices"))
        if type(devices) is int and 1 <= devices <= _MAX_DEVICES:
            values["training_devices"] = devices
        elif devices is not None:
            log.warning("memlens.training.devices %r is not a device count: 1 is used", devices)
        port = _dig(data, ("collector", "port"))
        if isinstance(port, int) and 0 < port < 65536:
            values["collector_port"] = port
        url = _dig(data, ("jaeger", "url"))
        if (base := jaeger.base_url(url)) is not None:
            values["jaeger_url"] = base
        elif url not in (None, ""):
            log.warning("memlens.jaeger.url %r is not an http(s) URL: no Jaeger links", url)
        return cls(**values)


def _dig(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """A setting given flat (``"hints.enabled"``) or nested (``{"hints": {"enabled"}}``)."""
    flat = ".".join(path)
    if flat in data:
        return data[flat]
    value: Any = data
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value
