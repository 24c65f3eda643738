"""What an evaluated module weighs (parameters and bytes, each tensor once: tied weights
count once), and the two questions the analysis asks: what a module class of the file
builds with its ``__init__`` defaults (the class lens), and what a call outside module
constructors builds (``GPT(GPTConfig(n_layer=24))``: the call-site hint)."""

from __future__ import annotations

import ast
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from memlens.lsp_server.analysis.dtype_names import element_bytes
from memlens.lsp_server.analysis.evaluator.classes import own_function
from memlens.lsp_server.analysis.evaluator.interpreter import Evaluator
from memlens.lsp_server.analysis.evaluator.values import (
    STEP_BUDGET,
    UNKNOWN,
    ClassRef,
    GiveUp,
    Module,
    OutOfBudget,
    Return,
    Tensor,
)
from memlens.lsp_server.analysis.findings import ModelSize

logger = logging.getLogger(__name__)


def module_size(module: Module) -> ModelSize:
    """Parameters and bytes of an evaluated module, each tensor once."""
    seen: dict[int, Tensor] = {}
    param_ids: set[int] = set()
    unknown: list[str] = []
    _walk(module, "", seen, param_ids, unknown)
    counted: set[int] = set()
    parts: list[tuple[str, int]] = []
    for name, child in [*module.params.items(), *module.children.items()]:
        inner = _param_ids(child) if isinstance(child, Module) else {id(child)}
        fresh = inner - counted
        counted |= fresh
        parts.append((name, sum(seen[i].numel or 0 for i in fresh)))
    params = sum(t.numel or 0 for i, t in seen.items() if i in param_ids)
    size = sum((t.numel or 0) * (element_bytes(t.dtype) or 4) for t in seen.values())
    dtypes = {t.dtype for i, t in seen.items() if i in param_ids}
    return ModelSize(
        params,
        size,
        tuple(unknown),
        tuple(parts),
        dtypes.pop() if len(dtypes) == 1 else "mixed" if dtypes else "fp32",
    )


def _walk(
    module: Module, prefix: str, seen: dict[int, Tensor], param_ids: set[int], unknown: list[str]
) -> None:
    """Every tensor under ``module`` by identity (``seen``; parameters in ``param_ids``),
    and the names of the parts that could not be sized (``unknown``). A function of its
    own, not a closure: a closure that calls itself is a reference cycle."""
    for name, tensor in module.params.items():
        seen.setdefault(id(tensor), tensor)
        param_ids.add(id(tensor))
        if tensor.numel is None:
            unknown.append(f"{prefix}{name}")
    for tensor in module.buffers.values():
        seen.setdefault(id(tensor), tensor)
    unknown.extend(f"{prefix}{name}" for name in module.unknown)
    if module.opaque:
        unknown.append(prefix.rstrip(".") or module.kind)
    for name, child in module.children.items():
        _walk(child, f"{prefix}{name}.", seen, param_ids, unknown)


def _param_ids(module: Module) -> set[int]:
    ids = {id(t) for t in module.params.values()}
    for child in module.children.values():
        ids |= _param_ids(child)
    return ids


def _guarded(run: Evaluator, action: Callable[[], Any]) -> Any:
    """``action()`` with a fresh step budget; UNKNOWN when it gives up in any way."""
    run.steps, run.depth = STEP_BUDGET, 0
    try:
        return action()
    except (GiveUp, Return, RecursionError):
        return UNKNOWN
    except (ArithmeticError, TypeError, ValueError) as error:  # a case not modelled: no figure
        logger.debug("static evaluation gave up: %r", error)
        return UNKNOWN


def class_size(run: Evaluator, name: str) -> ModelSize | None:
    """What module class ``name`` builds when its ``__init__`` parameters take their
    defaults; a parameter annotated with a config class of the file takes that class's
    defaults (named in ``defaults_of``). None when the class is no module class of the file
    or the evaluation gave up."""
    cls = run.globals.lookup(name)
    if not isinstance(cls, ClassRef) or not run.is_module_class(cls):
        return None
    init = own_function(cls.node, "__init__")
    configs: list[str] = []

    def build() -> Module:
        kwargs: dict[str, Any] = {}
        if init is not None:
            arguments = init.args
            positional = [*arguments.posonlyargs, *arguments.args][1:]
            with_default = len(positional) - len(arguments.defaults)
            for argument in positional[:with_default]:
                kwargs[argument.arg] = _annotated_default(run, argument, cls, configs)
        module = Module(cls.node.name, cls=cls)
        run.construct(cls, module, [], kwargs)
        return module

    module = _guarded(run, build)
    if not isinstance(module, Module):
        return None
    size = module_size(module)
    return replace(size, defaults_of=configs[0]) if configs else size


def _annotated_default(run: Evaluator, argument: ast.arg, cls: ClassRef, configs: list[str]) -> Any:
    annotation: Any = None
    if argument.annotation is not None:
        try:
            annotation = run.expr(argument.annotation, {}, cls.globals)
        except GiveUp:
            annotation = UNKNOWN
    if isinstance(annotation, ClassRef) and not run.is_module_class(annotation):
        try:
            value = run.instantiate(annotation, [], {})
        except OutOfBudget:
            raise
        except GiveUp:
            return UNKNOWN
        configs.append(annotation.node.name)
        return value
    return UNKNOWN


def call_size(
    run: Evaluator, call: ast.Call, local: dict[str, ast.expr | None]
) -> ModelSize | None:
    """What a call outside any module class builds (``GPT(GPTConfig(n_layer=24))``,
    ``Transformer.from_name("7B").half()``); ``local`` maps the names the enclosing
    function binds to the expression each is assigned once (None: not known). None when
    the call builds no module of the file."""

    def build() -> Any:
        env: dict[str, Any] = {}
        for name, node in local.items():
            env[name] = run.expr(node, env, run.globals) if node is not None else UNKNOWN
        return run.expr(call, env, run.globals)

    module = _guarded(run, build)
    if not isinstance(module, Module) or module.cls is None:
        return None
    return module_size(module)
