"""Statements of the functions the evaluator runs: assignments, ``if``, ``for`` over what
it can iterate, ``with``, ``assert``, ``return``, ``raise``; a statement it does not run
makes what it binds unknown."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any

from memlens.lsp_server.analysis.evaluator.values import (
    UNKNOWN,
    Fails,
    FunctionRef,
    Module,
    Return,
    class_like,
    plain,
)
from memlens.lsp_server.analysis.layer_params import PARAMETERLESS
from memlens.lsp_server.analysis.static_values import dotted_name

if TYPE_CHECKING:
    from memlens.lsp_server.analysis.evaluator.interpreter import Evaluator
    from memlens.lsp_server.analysis.evaluator.module_names import Globals


def block(run: Evaluator, statements: list[ast.stmt], env: dict[str, Any], g: Globals) -> None:
    """Run ``statements`` in order."""
    for node in statements:
        statement(run, node, env, g)


def statement(run: Evaluator, node: ast.stmt, env: dict[str, Any], g: Globals) -> None:
    """Run one statement in the local names ``env``."""
    run.step()
    if isinstance(node, ast.Assign):
        value = run.expr(node.value, env, g)
        for target in node.targets:
            assign(run, target, value, env, g)
    elif isinstance(node, ast.AnnAssign):
        if node.value is not None:
            assign(run, node.target, run.expr(node.value, env, g), env, g)
    elif isinstance(node, ast.AugAssign):
        current = run.expr(_load(node.target), env, g)
        value = run.binary(node.op, current, run.expr(node.value, env, g))
        assign(run, node.target, value, env, g)
    elif isinstance(node, ast.Expr):
        run.expr(node.value, env, g)
    elif isinstance(node, ast.Return):
        raise Return(run.expr(node.value, env, g) if node.value else None)
    elif isinstance(node, ast.If):
        test = run.truth(run.expr(node.test, env, g))
        if test is None:
            unknown_branches([node.body, node.orelse], env)
        else:
            block(run, node.body if test else node.orelse, env, g)
    elif isinstance(node, ast.For):
        _for(run, node, env, g)
    elif isinstance(node, ast.With):
        block(run, node.body, env, g)
    elif isinstance(node, ast.Assert):
        if run.truth(run.expr(node.test, env, g)) is False:
            raise Fails("assertion fails")
    elif isinstance(node, ast.Pass | ast.Import | ast.ImportFrom):
        pass
    elif isinstance(node, ast.FunctionDef):
        env[node.name] = FunctionRef(node, g)
    elif isinstance(node, ast.Raise):
        raise Fails("raise")
    else:
        unknown_branches([[node]], env)


def _for(run: Evaluator, node: ast.For, env: dict[str, Any], g: Globals) -> None:
    items = run.iterate(run.expr(node.iter, env, g))
    if items is None:
        unknown_branches([node.body], env)
        return
    for item in items:
        assign(run, node.target, item, env, g)
        block(run, node.body, env, g)
    block(run, node.orelse, env, g)


def unknown_branches(blocks: list[list[ast.stmt]], env: dict[str, Any]) -> None:
    """Code not run: what it binds is unknown; a module it may build is an unknown part."""
    owner = env.get("self")
    for node_of_block in (s for statements in blocks for s in statements):
        for node in ast.walk(node_of_block):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                env[node.id] = UNKNOWN
            elif (
                isinstance(owner, Module)
                and isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
            ):
                if _may_build_module(node_of_block):
                    owner.unknown.append(node.attr)
                owner.attrs[node.attr] = UNKNOWN


def assign(run: Evaluator, target: ast.expr, value: Any, env: dict[str, Any], g: Globals) -> None:
    """Bind ``value`` to an assignment target (names, tuples, attributes, dict items)."""
    if isinstance(target, ast.Name):
        env[target.id] = value
    elif isinstance(target, ast.Tuple | ast.List):
        items = run.iterate(value)
        if items is None or len(items) != len(target.elts):
            for element in target.elts:
                assign(run, element, UNKNOWN, env, g)
            return
        for element, item in zip(target.elts, items, strict=True):
            assign(run, element, item, env, g)
    elif isinstance(target, ast.Attribute):
        run.set_attribute(run.expr(target.value, env, g), target.attr, value)
    elif isinstance(target, ast.Subscript):
        container = run.expr(target.value, env, g)
        key = run.expr(target.slice, env, g)
        if isinstance(container, dict) and plain(key):
            container[key] = value


def _load(target: ast.expr) -> ast.expr:
    copy = ast.Name(target.id, ast.Load()) if isinstance(target, ast.Name) else target
    return ast.copy_location(copy, target)


def _may_build_module(statement: ast.stmt) -> bool:
    for node in ast.walk(statement):
        if isinstance(node, ast.Call):
            last = (dotted_name(node.func) or "").rsplit(".", 1)[-1]
            if last == "Parameter" or (class_like(last) and last not in PARAMETERLESS):
                return True
    return False
