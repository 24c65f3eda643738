"""Calls outside module constructors that build a module class of the file, sized by the
evaluator: ``GPT(GPTConfig(n_layer=24))``, ``Transformer.from_name("7B")``, either with
``.half()``/``.bfloat16()``/``.to(dtype)`` chained, in the dtype an earlier
``torch.set_default_dtype(...)`` statement sets; with what a quick fix to another dtype
would make of each."""

from __future__ import annotations

import ast
from collections.abc import Callable

from memlens.lsp_server.analysis.dtype_names import static_dtype
from memlens.lsp_server.analysis.evaluator import ClassRef, Evaluator, call_size
from memlens.lsp_server.analysis.findings import DtypeSlot, ModelBuild, ModelSize, Span
from memlens.lsp_server.analysis.source_index import (
    ScopeInfo,
    SourceIndex,
    canonical_name,
)
from memlens.lsp_server.analysis.static_values import dotted_name

_CAST_CALLS = frozenset({"half", "bfloat16", "float", "to"})
_FIX_CASTS = {"bf16": "bfloat16", "fp16": "half"}
"""The dtypes quick fixes offer for a build → the cast method whose result sizes them."""
_SET_DEFAULT = "torch.set_default_dtype"
_DEFAULT_DTYPES = frozenset({"fp32", "bf16", "fp16", "fp64"})
"""What ``torch.set_default_dtype`` accepts: floating-point dtypes."""
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef)


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


def _set_default(statement: ast.stmt, index: SourceIndex) -> str | None:
    """The dtype a ``torch.set_default_dtype(torch.bfloat16)`` statement sets; ``?`` when
    it is not a static float ``torch`` dtype (torch refuses a string or an integer dtype);
    None for any other statement."""
    if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)):
        return None
    call = statement.value
    if canonical_name(index.aliases, dotted_name(call.func)) != _SET_DEFAULT:
        return None
    argument = call.args[0] if len(call.args) == 1 and not call.keywords else None
    if argument is None or isinstance(argument, ast.Constant):
        return "?"
    dtype = static_dtype(argument, index.module.scope(), index.aliases)
    return dtype if dtype in _DEFAULT_DTYPES else "?"


def default_dtypes(tree: ast.Module, index: SourceIndex) -> dict[int, str]:
    """``id(call)`` → the dtype the last ``torch.set_default_dtype(...)`` statement before
    it sets, for the calls after one. A statement counts from where it stands to the end of
    its block (a function or class defined after it inherits it, as one called after the
    module ran does)."""
    found: dict[int, str] = {}
    names = (canonical_name(index.aliases, dotted_name(site.call.func)) for site in index.calls)
    if _SET_DEFAULT not in names:
        return found

    def block(statements: list[ast.stmt], current: str) -> None:
        for statement in statements:
            if (dtype := _set_default(statement, index)) is not None:
                current = dtype
            elif isinstance(statement, (ast.ClassDef, *_SCOPES)):
                block(statement.body, current)
            else:
                nested = [
                    getattr(statement, name)
                    for name in ("body", "orelse", "finalbody")
                    if isinstance(getattr(statement, name, None), list)
                ]
                nested += [handler.body for handler in getattr(statement, "handlers", [])]
                nested += [case.body for case in getattr(statement, "cases", [])]
                inner = {id(s) for body in nested for s in body}
                for node in _walk_outside(statement, inner):
                    if isinstance(node, ast.Call) and current != "fp32":
                        found[id(node)] = current
                for body in nested:
                    block(body, current)

    block(tree.body, "fp32")
    return found


def _walk_outside(statement: ast.stmt, inner: set[int]) -> list[ast.AST]:
    """The nodes of ``statement`` outside its nested statements (``inner``) and lambdas."""
    nodes: list[ast.AST] = []
    stack: list[ast.AST] = [statement]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(
            child
            for child in ast.iter_child_nodes(node)
            if id(child) not in inner and not isinstance(child, ast.Lambda)
        )
    return nodes


def _cast_slot(
    call: ast.Call, index: SourceIndex, scope: ScopeInfo, span: Callable[[ast.expr], Span]
) -> DtypeSlot:
    """Where a quick fix puts another dtype: in place of a chained ``.half()`` (or of the
    dtype a chained ``.to(...)`` names), else a ``.to(dtype)`` chained at the end."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr in _CAST_CALLS:
        if func.attr != "to" and not call.args and not call.keywords:
            start = span(func.value).end
            return DtypeSlot(Span(start, span(call).end), ".to({dtype})")
        if func.attr == "to":
            keyword = next((k for k in call.keywords if k.arg == "dtype"), None)
            values = [keyword.value] if keyword else list(call.args)
            for value in values:
                if static_dtype(value, scope.scope(), index.aliases) != "?":
                    return DtypeSlot(span(value), "{dtype}")
    end = span(call).end
    return DtypeSlot(Span(end, end), ".to({dtype})")


def _cast(call: ast.Call, method: str) -> ast.Call:
    """``call.method()``: the source as a quick fix to that dtype leaves it."""
    attribute = ast.copy_location(ast.Attribute(call, method, ast.Load()), call)
    return ast.copy_location(ast.Call(attribute, [], []), call)


def _sized(
    run: Evaluator, call: ast.Call, local: dict[str, ast.expr | None], default: str
) -> ModelSize | None:
    run.default_dtype = default
    try:
        return call_size(run, call, local)
    finally:
        run.default_dtype = "fp32"


def find_builds(
    run: Evaluator, tree: ast.Module, index: SourceIndex, span: Callable[[ast.expr], Span]
) -> list[ModelBuild]:
    """Every call outside module constructors that the evaluator can size."""
    outer: dict[int, tuple[ast.Call, ScopeInfo, str, ast.Call]] = {}
    for site in index.calls:
        if site.owner is None and (module := _builds_module(run, site.call)):
            outer[id(site.call)] = (site.call, site.scope, module, site.call)
    if not outer:
        return []
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
                _, scope, module, inner = outer.pop(id(func.value))
                outer[id(site.call)] = (site.call, scope, module, inner)
                changed = True
    defaults = default_dtypes(tree, index)
    builds: list[ModelBuild] = []
    for call, scope, module, inner in outer.values():
        local = _locals(scope)
        default = defaults.get(id(inner), "fp32")
        if default == "?":
            continue  # the dtype every tensor takes is not known statically
        size = _sized(run, call, local, default)
        if size is None or not size.params:
            continue
        casts = tuple(
            (dtype, cast)
            for dtype, method in _FIX_CASTS.items()
            if size.dtype != dtype
            and (cast := _sized(run, _cast(call, method), local, default)) is not None
        )
        builds.append(
            ModelBuild(
                span(call),
                module,
                size,
                _cast_slot(call, index, scope, span),
                index.targets.get(id(call)),
                casts,
            )
        )
    return sorted(builds, key=lambda b: b.span.start)
