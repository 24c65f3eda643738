"""The names a parsed file binds at module level and what they evaluate to.

What a tree binds (:class:`ModuleNames`) is read once per tree and kept while the tree
lives (a followed workspace module's tree is shared by every evaluation); what the names
evaluate to (:class:`Globals`) belongs to one evaluation."""

from __future__ import annotations

import ast
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from memlens.lsp_server.analysis.evaluator.values import (
    UNKNOWN,
    ClassRef,
    External,
    FunctionRef,
    GiveUp,
)

if TYPE_CHECKING:
    from memlens.lsp_server.analysis.evaluator.interpreter import Evaluator

_BUILTINS: dict[str, Any] = {
    name: External(f"builtins.{name}")
    for name in (
        "int",
        "float",
        "max",
        "min",
        "len",
        "range",
        "dict",
        "list",
        "tuple",
        "abs",
        "round",
        "bool",
        "str",
        "sum",
        "isinstance",
        "super",
        "getattr",
        "hasattr",
        "enumerate",
        "zip",
        "sorted",
        "divmod",
    )
} | {"nn": External("torch.nn"), "torch": External("torch")}
_REBOUND = ast.Pass()
"""The node of a name bound more than once, or not by a plain assignment: unknown."""


class ModuleNames:
    """A tree's module-level bindings: name → its class, function, import or assigned
    expression (``_REBOUND`` when bound more than once or otherwise)."""

    __slots__ = ("__weakref__", "aliases", "from_imports", "nodes")

    def __init__(self, tree: ast.Module) -> None:
        self.nodes: dict[str, ast.AST] = {}
        self.aliases = _import_aliases(tree)
        self.from_imports = {
            alias.asname or alias.name
            for statement in tree.body
            if isinstance(statement, ast.ImportFrom)
            for alias in statement.names
        }
        counts: dict[str, int] = {}
        for statement in tree.body:
            for name, node in _bindings(statement):
                if isinstance(node, ast.alias):  # imports of one name agree: not a rebinding
                    self.nodes.setdefault(name, node)
                    continue
                counts[name] = counts.get(name, 0) + 1
                self.nodes[name] = node
        for name, count in counts.items():
            if count > 1:
                self.nodes[name] = _REBOUND


_NAMES: weakref.WeakKeyDictionary[ast.Module, ModuleNames] = weakref.WeakKeyDictionary()


def module_names(tree: ast.Module) -> ModuleNames:
    """The bindings of ``tree``, read once while it lives (nobody mutates parsed trees)."""
    found = _NAMES.get(tree)
    if found is None:
        found = _NAMES[tree] = ModuleNames(tree)
    return found


class Globals:
    """A file's module-level names in one evaluation: evaluated on first use, at most once."""

    __slots__ = ("evaluating", "names", "run", "values")

    def __init__(self, tree: ast.Module, run: Evaluator) -> None:
        self.run: Evaluator | None = run
        """None once the evaluation is closed."""
        self.names = module_names(tree)
        self.values: dict[str, Any] = {}
        self.evaluating: set[str] = set()

    def lookup(self, name: str) -> Any:
        """What ``name`` is at module level (a builtin when the file does not bind it)."""
        if name in self.values:
            return self.values[name]
        node = self.names.nodes.get(name)
        if node is None:
            return _BUILTINS.get(name, UNKNOWN)
        if name in self.evaluating:
            return UNKNOWN
        self.evaluating.add(name)
        try:
            value = self._value(name, node)
        finally:
            self.evaluating.discard(name)
        self.values[name] = value
        return value

    def close(self) -> None:
        """Forget the values (they refer back to this object: freed without the collector)."""
        self.values.clear()
        self.run = None

    def _value(self, name: str, node: ast.AST) -> Any:
        run = self.run
        if run is None:
            return UNKNOWN
        if isinstance(node, ast.ClassDef):
            return ClassRef(node, self)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return FunctionRef(node, self)
        if isinstance(node, ast.alias):
            full = self.names.aliases[name]
            module, _, attribute = full.rpartition(".")
            imported = run.module_globals(module) if name in self.names.from_imports else None
            if imported is not None:
                return imported.lookup(attribute)
            return External(full)
        if isinstance(node, ast.expr):
            try:
                return run.expr(node, {}, self)
            except GiveUp:
                return UNKNOWN
        return UNKNOWN


def _bindings(statement: ast.stmt) -> Iterator[tuple[str, ast.AST]]:
    if isinstance(statement, ast.Assign):
        for target in statement.targets:
            if isinstance(target, ast.Name):
                yield target.id, (statement.value if len(statement.targets) == 1 else _REBOUND)
            else:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        yield name.id, _REBOUND
    elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
        if statement.value is not None:
            yield statement.target.id, statement.value
    elif isinstance(statement, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
        yield statement.name, statement
    elif isinstance(statement, ast.Import | ast.ImportFrom):
        for alias in statement.names:
            yield (alias.asname or alias.name).split(".")[0], alias
    else:
        for node in ast.walk(statement):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                yield node.id, _REBOUND


def _import_aliases(tree: ast.Module) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Import):
            for alias in statement.names:
                aliases[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(statement, ast.ImportFrom):
            prefix = "." * statement.level + (statement.module or "")
            for alias in statement.names:
                aliases[alias.asname or alias.name] = f"{prefix}.{alias.name}"
    return aliases
