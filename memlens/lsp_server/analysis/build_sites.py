"""Calls outside module constructors that build a module class of the file, sized by the
evaluator: ``GPT(GPTConfig(n_layer=24))``, ``Transformer.from_name("7B")``, either with
``.half()``/``.bfloat16()``/``.to(dtype)`` chained."""

from __future__ import annotations

import ast
from collections.abc import Callable

from memlens.lsp_server.analysis.evaluator import ClassRef, Evaluator, call_size
from memlens.lsp_server.analysis.findings import ModelBuild, Span
from memlens.lsp_server.analysis.source_index import ScopeInfo, SourceIndex
from memlens.lsp_server.analysis.static_values import dotted_name

_CAST_CALLS = frozenset({"half", "bfloat16", "float", "to"})


def _builds_module(run: Evaluator, call: ast.Call) -> str | None:
    """The module class a call names (``GPT(...)``, ``GPT.from_name(...)``), or None."""
    name = dotted_name(call.func)
    if name is None or name.count(".") > 1:
        return None
    value = run.globals.lookup(name.split(".")[0])
    if isinstance(value, ClassRef) and run.is_module_class(value):
        return value.node.name
    return None


def _locals(scope: ScopeInfo) -> dict[str, ast.expr | None]:
    """Names the enclosing functions bind → the expression each is assigned once (None:
    bound otherwise or more than once), outermost function first."""
    chain: list[ScopeInfo] = []
    while scope.parent is not None:
        chain.append(scope)
        scope = scope.parent
    local: dict[str, ast.expr | None] = {}
    for info in reversed(chain):
        plain = dict(info.plain)
        for name, count in info.counts.items():
            local[name] = plain.get(name) if count == 1 else None
    return local


def find_builds(
    run: Evaluator, index: SourceIndex, span: Callable[[ast.expr], Span]
) -> list[ModelBuild]:
    """Every call outside module constructors that the evaluator can size."""
    outer: dict[int, tuple[ast.Call, ScopeInfo, str]] = {}
    for site in index.calls:
        if site.owner is None and (module := _builds_module(run, site.call)):
            outer[id(site.call)] = (site.call, site.scope, module)
    changed = True
    while changed:  # a cast chained on a build replaces it
        changed = False
        for site in index.calls:
            func = site.call.func
            if (
                isinstance(func, ast.Attribute)
                and func.attr in _CAST_CALLS
                and id(func.value) in outer
                and id(site.call) not in outer
            ):
                _, scope, module = outer.pop(id(func.value))
                outer[id(site.call)] = (site.call, scope, module)
                changed = True
    builds: list[ModelBuild] = []
    for call, scope, module in outer.values():
        size = call_size(run, call, _locals(scope))
        if size is not None and size.params:
            builds.append(ModelBuild(span(call), module, size, index.targets.get(id(call))))
    return sorted(builds, key=lambda b: b.span.start)
