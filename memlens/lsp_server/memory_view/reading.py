"""Reading a worker result field by field: every error is a MalformedReportError that
names the field (``report.estimate.layers[2].params is not a byte count: "lots"``)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from memlens.errors import MalformedReportError
from memlens.lsp_server.memory_view.payload import Number


def record(value: Any, where: str) -> Mapping[str, Any]:
    """``value`` as an object, else an error naming ``where``."""
    if not isinstance(value, Mapping):
        raise MalformedReportError(f"{where} is not an object")
    return value


def field(data: Mapping[str, Any], key: str, where: str) -> Any:
    """``data[key]``; missing: an error naming ``where.key``."""
    if key not in data:
        raise MalformedReportError(f"{where}.{key} is missing")
    return data[key]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def byte_count(data: Mapping[str, Any], key: str, where: str) -> Number:
    """A finite number ≥ 0 (bytes, or a count of parameters)."""
    value = field(data, key, where)
    if not _is_number(value) or value < 0:
        raise MalformedReportError(f"{where}.{key} is not a byte count: {json_text(value)}")
    number: Number = value
    return number


def optional_number(data: Mapping[str, Any], key: str, where: str) -> Number | None:
    """A finite number, or None when the key is missing or null."""
    value = data.get(key)
    if value is None:
        return None
    if not _is_number(value):
        raise MalformedReportError(f"{where}.{key} is not a number: {json_text(value)}")
    number: Number = value
    return number


def string(data: Mapping[str, Any], key: str, where: str) -> str:
    """A string field."""
    value = field(data, key, where)
    if not isinstance(value, str):
        raise MalformedReportError(f"{where}.{key} is not a string")
    return value


def flag(data: Mapping[str, Any], key: str, where: str) -> bool:
    """A true/false field."""
    value = field(data, key, where)
    if not isinstance(value, bool):
        raise MalformedReportError(f"{where}.{key} is not true or false")
    return value


def array(data: Mapping[str, Any], key: str, where: str) -> list[Any]:
    """A list field (a tuple too: a dataclass's own ``to_json`` may hold tuples)."""
    value = field(data, key, where)
    if not isinstance(value, list | tuple):
        raise MalformedReportError(f"{where}.{key} is not a list")
    return list(value)


def strings(value: Any) -> tuple[str, ...]:
    """The strings of a list (notes); anything else: none."""
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list | tuple) else ()


def json_text(value: Any) -> str:
    """A value as it appears in the JSON, for messages."""
    return json.dumps(value, ensure_ascii=False)
