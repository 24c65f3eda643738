"""One pass over a module's AST that collects everything the analysis needs.

Walking a 2,000-line file's tree costs tens of milliseconds in Python, so the analysis
walks it once: imports, assignments per scope (for static values), class definitions,
and every call with its scope, enclosing ``nn.Module`` method and repetition factors
(``for _ in range(N)``, comprehensions). Values are resolved afterwards, once every
scope's assignments are known.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from memlens.lsp_server.analysis.static_values import Scope

_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


@dataclass
class ScopeInfo:
    """Assignments seen in one scope (module, class body or function)."""

    parent: ScopeInfo | None
    counts: dict[str, int] = field(default_factory=dict)
    plain: list[tuple[str, ast.expr]] = field(default_factory=list)
    """``NAME = expr`` statements directly in the scope's body, in order."""
    _scope: Scope | None = None

    def bind(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def scope(self) -> Scope:
        """The static values of this scope (built once, parents first)."""
        if self._scope is None:
            parent = self.parent.scope() if self.parent else None
            self._scope = Scope.from_assignments(parent, self.counts, self.plain)
        return self._scope


@dataclass(frozen=True)
class LoopFactor:
    """A loop around a call: it repeats the call's module only when the module is
    accumulated (``self.layers.append(nn.Linear(...))``), not when it is reassigned."""

    iterable: ast.expr | None
    """The loop's ``range(...)``; None for a ``while`` loop (count unknown)."""


ACCUMULATORS = frozenset({"append", "extend", "insert", "add_module", "register_module"})
Factor = ast.expr | LoopFactor | None


@dataclass(frozen=True)
class CallSite:
    """A call, where it is, and how many times a module's constructor runs it."""

    call: ast.Call
    scope: ScopeInfo
    owner: str | None
    """The module class whose ``__init__`` contains the call (None elsewhere)."""
    factors: tuple[ast.expr | None, ...] = ()
    """``range(...)`` iterables that repeat the call; None for a repetition not static."""


@dataclass
class SourceIndex:
    """What one pass found."""

    module: ScopeInfo
    aliases: dict[str, str] = field(default_factory=dict)
    targets: dict[int, str] = field(default_factory=dict)
    """``id(value)`` of ``NAME = call(...)`` → NAME."""
    model_targets: dict[int, str] = field(default_factory=dict)
    """``id(call)`` of ``NAME = call(...).model`` → NAME (``load_model(...).model``)."""
    classes: list[tuple[ast.ClassDef, ScopeInfo]] = field(default_factory=list)
    calls: list[CallSite] = field(default_factory=list)


class _Indexer:
    def __init__(self) -> None:
        self.index = SourceIndex(ScopeInfo(None))
        self.accumulating = 0  # depth inside arguments of .append(...) and friends

    def imports(self, node: ast.Import | ast.ImportFrom) -> None:
        aliases = self.index.aliases
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                aliases[local] = alias.name if alias.asname else local
        elif node.module and node.level == 0:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def body(
        self,
        statements: list[ast.stmt],
        scope: ScopeInfo,
        owner: str | None,
        factors: tuple[Factor, ...],
        direct: bool,
    ) -> None:
        for statement in statements:
            self.statement(statement, scope, owner, factors, direct)

    def statement(
        self,
        node: ast.stmt,
        scope: ScopeInfo,
        owner: str | None,
        factors: tuple[Factor, ...],
        direct: bool,
    ) -> None:
        handler = _STATEMENTS.get(type(node))
        if handler is None:
            self.children(node, scope, owner, factors)
        else:
            handler(self, node, scope, owner, factors, direct)

    def _import(
        self,
        node: ast.Import | ast.ImportFrom,
        scope: ScopeInfo,
        owner: str | None,
        factors: tuple[Factor, ...],
        direct: bool,
    ) -> None:
        self.imports(node)
        for alias in node.names:
            scope.bind((alias.asname or alias.name).split(".")[0])

    def _class(
        self,
        node: ast.ClassDef,
        scope: ScopeInfo,
        owner: str | None,
        factors: tuple[Factor, ...],
        direct: bool,
    ) -> None:
        scope.bind(node.name)
        inner = ScopeInfo(scope)
        self.index.classes.append((node, inner))
        for child in node.body:  # __init__ builds the module's layers; nothing else does
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                # methods see the module's names, not the class body's (as in Python)
                inner.bind(child.name)
                self.function(child, scope, node.name if child.name == "__init__" else None)
            else:
                self.statement(child, inner, None, (), True)

    def _def(
        self,
        node: ast.FunctionDef | ast.AsyncFunctionDef,
        scope: ScopeInfo,
        owner: str | None,
        factors: tuple[Factor, ...],
        direct: bool,
    ) -> None:
        scope.bind(node.name)
        self.function(node, scope, owner)

    def _assign(
        self,
        node: ast.Assign,
        scope: ScopeInfo,
        owner: str | None,
        factors: tuple[Factor, ...],
        direct: bool,
    ) -> None:
        for target in node.targets:
            self.stores(target, scope)
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if direct:
                scope.plain.append((node.targets[0].id, node.value))
            value = node.value
            if isinstance(value, ast.Call):
                self.index.targets[id(value)] = node.targets[0].id
            elif (
                isinstance(value, ast.Attribute)
                and value.attr == "model"
                and isinstance(value.value, ast.Call)
            ):
                self.index.model_targets[id(value.value)] = node.targets[0].id
        self.expression(node.value, scope, owner, factors)

    def _annotated_assign(
        self,
        node: ast.AnnAssign,
        scope: ScopeInfo,
        owner: str | None,
        factors: tuple[Factor, ...],
        direct: bool,
    ) -> None:
        self.stores(node.target, scope)
        if node.value is not None:
            if direct and isinstance(node.target, ast.Name):
                scope.plain.append((node.target.id, node.value))
            self.expression(node.value, scope, owner, factors)

    def _augmented_assign(
        self,
        node: ast.AugAssign,
        scope: ScopeInfo,
        owner: str | None,
        factors: tuple[Factor, ...],
        direct: bool,
    ) -> None:
        self.stores(node.target, scope)
        self.expression(node.value, scope, owner, factors)

    def _for(
        self,
        node: ast.For | ast.AsyncFor,
        scope: ScopeInfo,
        owner: str | None,
        factors: tuple[Factor, ...],
        direct: bool,
    ) -> None:
        self.stores(node.target, scope)
        self.expression(node.iter, scope, owner, factors)
        self.body(node.body, scope, owner, (*factors, LoopFactor(node.iter)), False)
        self.body(node.orelse, scope, owner, factors, False)

    def _while(
        self,
        node: ast.While,
        scope: ScopeInfo,
        owner: str | None,
        factors: tuple[Factor, ...],
        direct: bool,
    ) -> None:
        self.expression(node.test, scope, owner, factors)
        self.body(node.body, scope, owner, (*factors, LoopFactor(None)), False)
        self.body(node.orelse, scope, owner, factors, False)

    def _if(
        self,
        node: ast.If,
        scope: ScopeInfo,
        owner: str | None,
        factors: tuple[Factor, ...],
        direct: bool,
    ) -> None:
        self.expression(node.test, scope, owner, factors)
        self.body(node.body, scope, owner, factors, False)
        self.body(node.orelse, scope, owner, factors, False)

    def _with(
        self,
        node: ast.With | ast.AsyncWith,
        scope: ScopeInfo,
        owner: str | None,
        factors: tuple[Factor, ...],
        direct: bool,
    ) -> None:
        for item in node.items:
            self.expression(item.context_expr, scope, owner, factors)
            if item.optional_vars is not None:
                self.stores(item.optional_vars, scope)
        self.body(node.body, scope, owner, factors, False)

    def _try(
        self,
        node: ast.Try | ast.TryStar,
        scope: ScopeInfo,
        owner: str | None,
        factors: tuple[Factor, ...],
        direct: bool,
    ) -> None:
        for handler in node.handlers:
            if handler.name:
                scope.bind(handler.name)
            self.body(handler.body, scope, owner, factors, False)
        for block in (node.body, node.orelse, node.finalbody):
            self.body(block, scope, owner, factors, False)

    def _match(
        self,
        node: ast.Match,
        scope: ScopeInfo,
        owner: str | None,
        factors: tuple[Factor, ...],
        direct: bool,
    ) -> None:
        self.expression(node.subject, scope, owner, factors)
        for case in node.cases:
            for pattern in ast.walk(case.pattern):
                if isinstance(name := getattr(pattern, "name", None), str):
                    scope.bind(name)
                if isinstance(rest := getattr(pattern, "rest", None), str):
                    scope.bind(rest)
            self.body(case.body, scope, owner, factors, False)

    def function(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef, scope: ScopeInfo, owner: str | None
    ) -> None:
        """A function's body in a scope of its own, its parameters bound (unknown)."""
        for default in (*node.args.defaults, *node.args.kw_defaults):
            if default is not None:
                self.expression(default, scope, None, ())
        inner = ScopeInfo(scope)
        arguments = node.args
        for argument in (
            *arguments.posonlyargs,
            *arguments.args,
            *arguments.kwonlyargs,
            arguments.vararg,
            arguments.kwarg,
        ):
            if argument is not None:
                inner.bind(argument.arg)
        self.body(node.body, inner, owner, (), True)

    def children(
        self, node: ast.AST, scope: ScopeInfo, owner: str | None, factors: tuple[Factor, ...]
    ) -> None:
        """The expressions directly under a simple statement, an expression or a keyword
        argument (compound statements and comprehensions have handlers of their own)."""
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, ast.expr):
                self.expression(value, scope, owner, factors)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.expr):
                        self.expression(item, scope, owner, factors)
                    elif isinstance(item, ast.keyword):
                        self.children(item, scope, owner, factors)

    def stores(self, target: ast.expr, scope: ScopeInfo) -> None:
        if isinstance(target, ast.Name):
            scope.bind(target.id)
        elif isinstance(target, ast.Tuple | ast.List | ast.Starred):
            for element in target.elts if not isinstance(target, ast.Starred) else [target.value]:
                self.stores(element, scope)

    def expression(
        self,
        node: ast.expr,
        scope: ScopeInfo,
        owner: str | None,
        factors: tuple[Factor, ...],
    ) -> None:
        while isinstance(node, ast.Attribute):  # ``self.config.hidden_size``: no call inside
            node = node.value
        if isinstance(node, _LEAVES):
            return
        if isinstance(node, ast.NamedExpr):
            self.stores(node.target, scope)
        if isinstance(node, _COMPREHENSIONS):
            local = ScopeInfo(scope)  # comprehension variables do not leak
            inner = factors
            for generator in node.generators:
                self.expression(generator.iter, local, owner, inner)
                self.stores(generator.target, local)
                inner = (*inner, None if generator.ifs else generator.iter)
            elements = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            for element in elements:
                self.expression(element, local, owner, inner)
            return
        if not isinstance(node, ast.Call):
            self.children(node, scope, owner, factors)
            return
        effective = tuple(
            f.iterable if isinstance(f, LoopFactor) else f
            for f in factors
            if not isinstance(f, LoopFactor) or self.accumulating
        )
        self.index.calls.append(CallSite(node, scope, owner, effective))
        accumulator = isinstance(node.func, ast.Attribute) and node.func.attr in ACCUMULATORS
        self.accumulating += accumulator
        self.children(node, scope, owner, factors)
        self.accumulating -= accumulator


_LEAVES = (ast.Name, ast.Constant, ast.Lambda)
"""Expressions with no calls to index under them (a lambda's body runs later, if ever)."""
_StatementHandler = Callable[[_Indexer, Any, ScopeInfo, str | None, tuple[Factor, ...], bool], None]
_STATEMENTS: dict[type[ast.stmt], _StatementHandler] = {
    ast.Import: _Indexer._import,
    ast.ImportFrom: _Indexer._import,
    ast.ClassDef: _Indexer._class,
    ast.FunctionDef: _Indexer._def,
    ast.AsyncFunctionDef: _Indexer._def,
    ast.Assign: _Indexer._assign,
    ast.AnnAssign: _Indexer._annotated_assign,
    ast.AugAssign: _Indexer._augmented_assign,
    ast.For: _Indexer._for,
    ast.AsyncFor: _Indexer._for,
    ast.While: _Indexer._while,
    ast.If: _Indexer._if,
    ast.With: _Indexer._with,
    ast.AsyncWith: _Indexer._with,
    ast.Try: _Indexer._try,
    ast.TryStar: _Indexer._try,
    ast.Match: _Indexer._match,
}
"""How each kind of statement is indexed; any other kind (``return``, an expression, …)
has its expressions walked."""


def index_source(tree: ast.Module) -> SourceIndex:
    """Index a parsed module in one pass."""
    indexer = _Indexer()
    indexer.body(tree.body, indexer.index.module, None, (), True)
    return indexer.index


def canonical_name(aliases: dict[str, str], name: str | None) -> str | None:
    """``nn.Linear`` → ``torch.nn.Linear`` through the file's imports (``nn`` without an
    import is taken as ``torch.nn``, as snippets usually mean)."""
    if name is None:
        return None
    head, _, rest = name.partition(".")
    full = aliases.get(head)
    if full is None:
        return "torch.nn." + rest if head == "nn" and rest else name
    return f"{full}.{rest}" if rest else full
