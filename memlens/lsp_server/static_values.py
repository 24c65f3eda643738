"""Values known from the source alone: literals, constants, simple arithmetic on them.

Anything else (a call, an attribute of a runtime object, a name assigned more than once)
is unknown: the analysis gives no number rather than a guess.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterable
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
        """The expression a name was assigned once, in this scope or a parent's."""
        if name in self.nodes:
            return self.nodes[name]
        return self.parent.node(name) if self.parent else None

    def collect(self, statements: Iterable[ast.stmt]) -> Scope:
        """Record names assigned exactly once, by a plain ``NAME = expr`` at this level.

        A name assigned anywhere else in ``statements`` (inside an ``if``, a loop, twice)
        becomes unknown here, shadowing any value a parent scope has for it.
        """
        statements = list(statements)
        counts: dict[str, int] = {}
        for statement in statements:
            for name in _stored_names(statement):
                counts[name] = counts.get(name, 0) + 1
        for name in counts:
            self.values[name] = UNKNOWN
        for statement in statements:
            target, value = _plain_assignment(statement)
            if target is not None and value is not None and counts.get(target) == 1:
                self.nodes[target] = value
                self.values[target] = evaluate(value, self)
        return self


def _stored_names(statement: ast.stmt) -> Iterable[str]:
    """Names bound by ``statement``, not descending into nested functions or classes."""
    stack: list[ast.AST] = [statement]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            yield node.id
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node.name
            continue  # their bodies are scopes of their own
        elif isinstance(node, ast.Lambda):
            continue
        stack.extend(ast.iter_child_nodes(node))


def _plain_assignment(statement: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if (
        isinstance(statement, ast.Assign)
        and len(statement.targets) == 1
        and isinstance(statement.targets[0], ast.Name)
    ):
        return statement.targets[0].id, statement.value
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
        return statement.target.id, statement.value
    return None, None


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
