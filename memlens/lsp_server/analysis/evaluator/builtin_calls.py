"""Python's own functions as the evaluator models them: builtins (``int``, ``max``,
``range``, ``len``, ``zip``, ``getattr`` …), ``math`` functions, and methods of dicts,
lists and strings; results are bounded, and anything else is unknown."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from memlens.lsp_server.analysis.evaluator.values import (
    MAX_INT,
    MAX_ITEMS,
    UNKNOWN,
    GiveUp,
    is_int,
    plain,
)

if TYPE_CHECKING:
    from memlens.lsp_server.analysis.evaluator.interpreter import Evaluator

MATH = frozenset({"ceil", "floor", "sqrt", "prod", "log2"})
"""The ``math`` functions modelled."""
_REDUCERS: dict[str, Callable[..., Any]] = {"max": max, "min": min, "sum": sum, "sorted": sorted}
_CONVERSIONS: dict[str, Callable[..., Any]] = {
    "int": int,
    "float": float,
    "abs": abs,
    "round": round,
    "bool": bool,
    "str": str,
    "divmod": divmod,
}


def math_call(name: str, args: list[Any]) -> Any:
    """``math.<name>(*args)`` on known numbers."""
    if name == "prod":
        items = args[0] if args and isinstance(args[0], list | tuple) else None
        if items is not None and all(is_int(i) for i in items):
            result = math.prod(items)
            return result if abs(result) < MAX_INT else UNKNOWN
        return UNKNOWN
    if len(args) != 1 or not isinstance(args[0], int | float) or isinstance(args[0], bool):
        return UNKNOWN
    try:
        return getattr(math, name)(args[0])
    except (ValueError, OverflowError):
        return UNKNOWN


def builtin(run: Evaluator, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """``<builtin name>(*args, **kwargs)``."""
    if name == "range" and 1 <= len(args) <= 3 and all(is_int(a) for a in args):
        return range(*args) if args[-1] != 0 or len(args) < 3 else UNKNOWN
    if name == "dict" and not args:
        return dict(kwargs)
    if name == "dict" and len(args) == 1 and isinstance(args[0], dict):
        return {**args[0], **kwargs}
    if name in ("list", "tuple") and len(args) == 1:
        items = run.iterate(args[0])
        return UNKNOWN if items is None else (items if name == "list" else tuple(items))
    if name == "len" and len(args) == 1 and isinstance(args[0], list | tuple | dict | str | range):
        return len(args[0])
    if name == "enumerate" and len(args) == 1:
        items = run.iterate(args[0])
        return UNKNOWN if items is None else list(enumerate(items))
    if name == "zip" and args:
        lists = [run.iterate(a) for a in args]
        if any(items is None for items in lists):
            return UNKNOWN
        return [tuple(group) for group in zip(*[items or [] for items in lists], strict=False)]
    if name == "isinstance":
        return UNKNOWN
    if name in ("getattr", "hasattr") and len(args) >= 2 and isinstance(args[1], str):
        value = run.attribute(args[0], args[1])
        if name == "hasattr":
            return UNKNOWN if value is UNKNOWN else True
        return args[2] if value is UNKNOWN and len(args) == 3 else value
    simple = all(plain(a) or isinstance(a, list | tuple | dict) for a in args)
    if not simple or kwargs or any(a is UNKNOWN for a in args):
        return UNKNOWN
    try:
        items = args[0] if len(args) == 1 and name in _REDUCERS else args
        function = _REDUCERS.get(name) or _CONVERSIONS[name]
        result = function(items) if name in _REDUCERS else function(*args)
    except (TypeError, ValueError, KeyError, OverflowError, ZeroDivisionError):
        return UNKNOWN
    if isinstance(result, str) and len(result) > MAX_ITEMS:
        return UNKNOWN
    return result


def value_method(run: Evaluator, obj: Any, name: str, args: list[Any]) -> Any:
    """A method of a dict, list or str (``get``, ``items``, ``append``, ``lower`` …)."""
    if isinstance(obj, dict):
        if name == "get" and args and plain(args[0]):
            return obj.get(args[0], args[1] if len(args) > 1 else None)
        if name in ("keys", "values", "items") and not args:
            return list(getattr(obj, name)())
        if name == "update" and args and isinstance(args[0], dict):
            obj.update(args[0])
            return None
    if isinstance(obj, list) and name in ("append", "extend") and len(args) == 1:
        if name == "append":
            obj.append(args[0])
        else:
            items = run.iterate(args[0])
            if items is None:
                raise GiveUp("extend")
            obj.extend(items)
        if len(obj) > MAX_ITEMS:
            raise GiveUp("list too long")
        return None
    if isinstance(obj, str) and name in ("lower", "upper", "strip") and not args:
        return getattr(obj, name)()
    if (
        isinstance(obj, str)
        and name in ("startswith", "endswith")
        and len(args) == 1
        and isinstance(args[0], str)
    ):
        return getattr(obj, name)(args[0])
    return UNKNOWN
