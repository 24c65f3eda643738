"""Typed server settings, parsed once from the client's ``memlens.*`` configuration."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from memlens.errors import UsageError
from memlens.profiler.machine import default_budget

log = logging.getLogger(__name__)
_SIZE = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_size(value: Any) -> int:
    """``25769803776``, ``"24GiB"``, ``"24 GB"`` → bytes; UsageError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and (match := _SIZE.match(value)):
        unit = (match["unit"] or "B").lower()
        size = int(float(match["number"]) * _UNITS[unit])
        if size > 0:
            return size
    raise UsageError(f"memoryBudget {value!r} is not a size: use bytes or e.g. '24GiB'")


@functools.cache
def _machine_budget() -> int:
    return default_budget()


@dataclass(frozen=True)
class Settings:
    """What the client configured under ``memlens.*``."""

    memory_budget: int | None = None
    """Bytes a model may use; None means the largest visible GPU, else this machine's RAM."""
    hints_enabled: bool = True
    tracing_enabled: bool = False
    collector_port: int = 4318
    jaeger_url: str | None = None
    trusted: bool = True
    """False in an untrusted workspace: static hints only, no worker."""

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
                values["memory_budget"] = parse_size(budget)
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
        port = _dig(data, ("collector", "port"))
        if isinstance(port, int) and 0 < port < 65536:
            values["collector_port"] = port
        url = _dig(data, ("jaeger", "url"))
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            values["jaeger_url"] = url.rstrip("/")
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
