"""Values known from the source alone: literals, constants, simple arithmetic on them.

Anything else (a call, an attribute of a runtime object, a name assigned more than once)
is unknown: the analysis gives no number rather than a guess.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

Value = int | float | str | bool | None | tuple[Any, ...]
UNKNOWN: Any = object()
_MAX_INT = 1 << 62  # refuse absurd arithmetic (e.g. 10**10**10) instead of computing it

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
}


class Scope:
    """Names with a single static value, looked up here and then in the parent scope."""

    def __init__(self, parent: Scope | None = None) -> None:
        self.parent = parent
        self.values: dict[str, Any] = {}
        self.nodes: dict[str, ast.expr] = {}

    def lookup(self, name: str) -> Any:
        """The name's value, or UNKNOWN."""
        if name in self.values:
            return self.values[name]
        return self.parent.lookup(name) if self.parent else UNKNOWN

    def node(self, name: str) -> ast.expr | None:
        """The expression a name was assigned once, in this scope or a parent's (None when
        this scope binds the name some other way, shadowing its parents)."""
        if name in self.values:
            return self.nodes.get(name)
        return self.parent.node(name) if self.parent else None

    @classmethod
    def from_assignments(
        cls, parent: Scope | None, counts: dict[str, int], plain: list[tuple[str, ast.expr]]
    ) -> Scope:
        """A scope from what one pass saw: every bound name with how often it is bound,
        and the plain ``NAME = expr`` statements directly in the scope's body.

        A name bound once, by such a statement, has that value; every other bound name is
        unknown here, shadowing any value a parent scope has for it.
        """
        scope = cls(parent)
        for name in counts:
            scope.values[name] = UNKNOWN
        for name, value in plain:
            if counts.get(name) == 1:
                scope.nodes[name] = value
                scope.values[name] = evaluate(value, scope)
        return scope


def evaluate(node: ast.expr | None, scope: Scope | None = None) -> Any:
    """The static value of ``node`` or UNKNOWN."""
    if node is None:
        return UNKNOWN
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return scope.lookup(node.id) if scope else UNKNOWN
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = evaluate(node.operand, scope)
        if isinstance(operand, int | float) and not isinstance(operand, bool):
            return -operand if isinstance(node.op, ast.USub) else operand
        return UNKNOWN
    if isinstance(node, ast.BinOp):
        return _binary(node, scope)
    if isinstance(node, ast.Tuple | ast.List):
        items = tuple(evaluate(e, scope) for e in node.elts)
        return UNKNOWN if any(i is UNKNOWN for i in items) else items
    return UNKNOWN


def _binary(node: ast.BinOp, scope: Scope | None) -> Any:
    left, right = evaluate(node.left, scope), evaluate(node.right, scope)
    numeric = (int, float)
    if isinstance(node.op, ast.Pow) and isinstance(left, int) and isinstance(right, int):
        if 0 <= right <= 64 and abs(left) < 1 << 20 and abs(result := left**right) < _MAX_INT:
            return result
        return UNKNOWN
    op = _BINARY.get(type(node.op))
    if op is None or not isinstance(left, numeric) or not isinstance(right, numeric):
        return UNKNOWN
    if isinstance(left, bool) or isinstance(right, bool):
        return UNKNOWN
    try:
        result = op(left, right)
    except (ZeroDivisionError, OverflowError):
        return UNKNOWN
    if isinstance(result, float) and result.is_integer() and isinstance(node.op, ast.Div):
        result = int(result)
    return result if abs(result) < _MAX_INT else UNKNOWN


def static_int(node: ast.expr | None, scope: Scope | None) -> int | None:
    """The value when it is a non-negative int, else None."""
    value = evaluate(node, scope)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def dotted_name(node: ast.expr) -> str | None:
    """``torch.nn.Linear`` for an attribute chain of names, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))
