"""Expressions: names, literals, arithmetic, comparisons, conditionals, subscripts,
attributes, comprehensions and calls, each by a handler of its node type
(:data:`EXPRESSIONS`); a node type without one is unknown."""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from memlens.lsp_server.analysis.evaluator.values import (
    MAX_INT,
    MAX_ITEMS,
    UNKNOWN,
    External,
    Module,
    Super,
    full_name,
    is_int,
    plain,
)

if TYPE_CHECKING:
    from memlens.lsp_server.analysis.evaluator.interpreter import Evaluator
    from memlens.lsp_server.analysis.evaluator.module_names import Globals

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Div: lambda a, b: a / b,
    ast.Mod: lambda a, b: a % b,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: bool(a == b),
    ast.NotEq: lambda a, b: bool(a != b),
    ast.Lt: lambda a, b: bool(a < b),
    ast.LtE: lambda a, b: bool(a <= b),
    ast.Gt: lambda a, b: bool(a > b),
    ast.GtE: lambda a, b: bool(a >= b),
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: lambda a, b: a is b,
    ast.IsNot: lambda a, b: a is not b,
}
_NUMBERS = (int, float)
_SEQUENCES = (str, tuple, list)


def binary(op: ast.operator, left: Any, right: Any) -> Any:
    """``left op right`` on numbers (bounded), and ``+``/``*`` on sequences (bounded)."""
    if isinstance(op, ast.Pow):
        if is_int(left) and is_int(right) and 0 <= right <= 64 and abs(left) < 1 << 20:
            result = left**right
            return result if abs(result) < MAX_INT else UNKNOWN
        if isinstance(left, _NUMBERS) and isinstance(right, _NUMBERS) and abs(right) < 64:
            try:
                return float(left) ** float(right)
            except (OverflowError, ZeroDivisionError):
                return UNKNOWN
        return UNKNOWN
    fn = _BINARY.get(type(op))
    if fn is None:
        return UNKNOWN
    if isinstance(left, _NUMBERS) and isinstance(right, _NUMBERS):
        try:
            result = fn(left, right)
        except (ZeroDivisionError, OverflowError):
            return UNKNOWN
        return result if abs(result) < MAX_INT else UNKNOWN
    if isinstance(op, ast.Add) and isinstance(left, _SEQUENCES) and type(left) is type(right):
        joined: Any = left + right  # type: ignore[operator]
        return joined if len(joined) < MAX_ITEMS else UNKNOWN
    if (
        isinstance(op, ast.Mult)
        and isinstance(left, _SEQUENCES)
        and is_int(right)
        and len(left) * max(right, 0) < MAX_ITEMS
    ):
        return left * right
    return UNKNOWN


def _name(run: Evaluator, node: ast.Name, env: dict[str, Any], g: Globals) -> Any:
    if node.id in env:
        return env[node.id]
    return g.lookup(node.id)


def _constant(run: Evaluator, node: ast.Constant, env: dict[str, Any], g: Globals) -> Any:
    return node.value


def _sequence(run: Evaluator, node: ast.Tuple | ast.List, env: dict[str, Any], g: Globals) -> Any:
    items: list[Any] = []
    for element in node.elts:
        if isinstance(element, ast.Starred):
            inner = run.iterate(run.expr(element.value, env, g))
            if inner is None:
                return UNKNOWN
            items.extend(inner)
        else:
            items.append(run.expr(element, env, g))
    return tuple(items) if isinstance(node, ast.Tuple) else items


def _dict(run: Evaluator, node: ast.Dict, env: dict[str, Any], g: Globals) -> Any:
    result: dict[Any, Any] = {}
    for key, value in zip(node.keys, node.values, strict=True):
        if key is None:
            inner = run.expr(value, env, g)
            if not isinstance(inner, dict):
                return UNKNOWN
            result.update(inner)
            continue
        k = run.expr(key, env, g)
        if not plain(k):
            return UNKNOWN
        result[k] = run.expr(value, env, g)
    return result


def _binop(run: Evaluator, node: ast.BinOp, env: dict[str, Any], g: Globals) -> Any:
    return binary(node.op, run.expr(node.left, env, g), run.expr(node.right, env, g))


def _unary(run: Evaluator, node: ast.UnaryOp, env: dict[str, Any], g: Globals) -> Any:
    operand = run.expr(node.operand, env, g)
    if isinstance(node.op, ast.Not):
        truth = run.truth(operand)
        return UNKNOWN if truth is None else not truth
    if isinstance(operand, int | float) and not isinstance(operand, bool):
        return -operand if isinstance(node.op, ast.USub) else operand
    return UNKNOWN


def _boolop(run: Evaluator, node: ast.BoolOp, env: dict[str, Any], g: Globals) -> Any:
    value: Any = UNKNOWN
    for operand in node.values:
        value = run.expr(operand, env, g)
        truth = run.truth(value)
        if truth is None:
            return UNKNOWN
        if truth == isinstance(node.op, ast.Or):
            return value
    return value


def _compare(run: Evaluator, node: ast.Compare, env: dict[str, Any], g: Globals) -> Any:
    left = run.expr(node.left, env, g)
    for op, comparator in zip(node.ops, node.comparators, strict=True):
        right = run.expr(comparator, env, g)
        if left is UNKNOWN or right is UNKNOWN:
            return UNKNOWN
        if isinstance(op, ast.Is | ast.IsNot) and (left is None or right is None):
            pass
        elif not (plain(left) and (plain(right) or isinstance(right, list | dict))):
            return UNKNOWN
        try:
            if not _COMPARE[type(op)](left, right):
                return False
        except TypeError:
            return UNKNOWN
        left = right
    return True


def _ifexp(run: Evaluator, node: ast.IfExp, env: dict[str, Any], g: Globals) -> Any:
    truth = run.truth(run.expr(node.test, env, g))
    if truth is None:
        return UNKNOWN
    return run.expr(node.body if truth else node.orelse, env, g)


def _subscript(run: Evaluator, node: ast.Subscript, env: dict[str, Any], g: Globals) -> Any:
    container = run.expr(node.value, env, g)
    key = run.expr(node.slice, env, g)
    if isinstance(container, dict) and plain(key):
        return container.get(key, UNKNOWN)
    if isinstance(container, list | tuple | str) and (is_int(key) or isinstance(key, slice)):
        try:
            return container[key]
        except IndexError:
            return UNKNOWN
    if isinstance(container, Module) and is_int(key):
        children = list(container.children.values())
        return children[key] if -len(children) <= key < len(children) else UNKNOWN
    return UNKNOWN


def _slice(run: Evaluator, node: ast.Slice, env: dict[str, Any], g: Globals) -> Any:
    parts = [run.expr(p, env, g) if p else None for p in (node.lower, node.upper, node.step)]
    if all(p is None or is_int(p) for p in parts) and parts[2] != 0:
        return slice(*parts)
    return UNKNOWN


def _attribute(run: Evaluator, node: ast.Attribute, env: dict[str, Any], g: Globals) -> Any:
    return run.attribute(run.expr(node.value, env, g), node.attr)


def _comprehension(
    run: Evaluator,
    node: ast.ListComp | ast.GeneratorExp | ast.DictComp,
    env: dict[str, Any],
    g: Globals,
) -> Any:
    results: list[Any] = []
    if not _generate(run, node, node.generators, dict(env), g, results):
        return UNKNOWN
    if isinstance(node, ast.DictComp):
        return dict(results) if all(plain(k) for k, _ in results) else UNKNOWN
    return results if isinstance(node, ast.ListComp) else tuple(results)


def _generate(
    run: Evaluator,
    node: ast.ListComp | ast.GeneratorExp | ast.DictComp,
    generators: list[ast.comprehension],
    env: dict[str, Any],
    g: Globals,
    results: list[Any],
) -> bool:
    if not generators:
        if isinstance(node, ast.DictComp):
            results.append((run.expr(node.key, env, g), run.expr(node.value, env, g)))
        else:
            results.append(run.expr(node.elt, env, g))
        return True
    first, rest = generators[0], generators[1:]
    items = run.iterate(run.expr(first.iter, env, g))
    if items is None:
        return False
    for item in items:
        run.assign(first.target, item, env, g)
        conditions = [run.truth(run.expr(c, env, g)) for c in first.ifs]
        if None in conditions:
            return False
        if all(conditions) and not _generate(run, node, rest, env, g, results):
            return False
    return True


def _call(run: Evaluator, node: ast.Call, env: dict[str, Any], g: Globals) -> Any:
    fn = run.expr(node.func, env, g)
    args: list[Any] = []
    for arg in node.args:
        if isinstance(arg, ast.Starred):
            items = run.iterate(run.expr(arg.value, env, g))
            if items is None:
                return run.unknown_call(fn, node)
            args.extend(items)
        else:
            args.append(run.expr(arg, env, g))
    kwargs: dict[str, Any] = {}
    for keyword in node.keywords:
        value = run.expr(keyword.value, env, g)
        if keyword.arg is None:
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                return run.unknown_call(fn, node)
            kwargs.update(value)
        else:
            kwargs[keyword.arg] = value
    if isinstance(fn, External) and full_name(fn.name) == "builtins.super":
        owner = env.get("self")
        return Super(owner, env.get("__class__")) if owner is not None else UNKNOWN
    return run.call(fn, args, kwargs, node)


Handler = Callable[["Evaluator", Any, dict[str, Any], "Globals"], Any]
EXPRESSIONS: dict[type[ast.expr], Handler] = {
    ast.Name: _name,
    ast.Constant: _constant,
    ast.Tuple: _sequence,
    ast.List: _sequence,
    ast.Dict: _dict,
    ast.BinOp: _binop,
    ast.UnaryOp: _unary,
    ast.BoolOp: _boolop,
    ast.Compare: _compare,
    ast.IfExp: _ifexp,
    ast.Subscript: _subscript,
    ast.Slice: _slice,
    ast.Attribute: _attribute,
    ast.ListComp: _comprehension,
    ast.GeneratorExp: _comprehension,
    ast.DictComp: _comprehension,
    ast.Call: _call,
}
"""Node type → the function that evaluates it."""
