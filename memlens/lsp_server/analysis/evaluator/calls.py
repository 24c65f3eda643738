"""Calls: functions and methods of the parsed files run on bound arguments (with a depth
limit), classes instantiated, methods of known values, and names from outside the files
(``torch.nn`` layers, tensor factories, ``math``, builtins); a call that cannot be run
is a module of unknown size when it may build one, else unknown."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any

from memlens.lsp_server.analysis.evaluator import builtin_calls, torch_modules
from memlens.lsp_server.analysis.evaluator.values import (
    MAX_DEPTH,
    UNKNOWN,
    ClassRef,
    External,
    FunctionRef,
    GiveUp,
    Method,
    Module,
    OutOfBudget,
    Return,
    Super,
    Tensor,
    class_like,
    full_name,
)
from memlens.lsp_server.analysis.layer_params import PARAMETERLESS
from memlens.lsp_server.analysis.static_values import dotted_name

if TYPE_CHECKING:
    from memlens.lsp_server.analysis.evaluator.interpreter import Evaluator
    from memlens.lsp_server.analysis.evaluator.module_names import Globals


def call(run: Evaluator, fn: Any, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
    """``fn(*args, **kwargs)``; ``node`` is the call's syntax (layers are recorded by it)."""
    run.step()
    if isinstance(fn, ClassRef):
        return run.instantiate(fn, args, kwargs)
    if isinstance(fn, FunctionRef):
        bound = [fn.bound] if fn.bound is not None else []
        return run_function(run, fn, [*bound, *args], kwargs, {"__class__": fn.owner})
    if isinstance(fn, Method):
        return _method(run, fn, args, kwargs)
    if isinstance(fn, Super):
        return UNKNOWN
    if isinstance(fn, External):
        return _external(run, full_name(fn.name), args, kwargs, node)
    if isinstance(node, ast.Call):
        return unknown_call(run, fn, node)
    return UNKNOWN


def run_function(
    run: Evaluator,
    fn: FunctionRef,
    args: list[Any],
    kwargs: dict[str, Any],
    env: dict[str, Any] | None = None,
) -> Any:
    """Run a function's body on its bound arguments; its ``return`` value (None without)."""
    run.depth += 1
    if run.depth > MAX_DEPTH:
        run.depth -= 1
        raise OutOfBudget("depth")
    try:
        local = dict(env or {})
        local.update(_bind(run, fn.node.args, args, kwargs, fn.globals))
        try:
            run.block(fn.node.body, local, fn.globals)
        except Return as returned:
            return returned.value
        return None
    finally:
        run.depth -= 1


def _bind(
    run: Evaluator, arguments: ast.arguments, args: list[Any], kwargs: dict[str, Any], g: Globals
) -> dict[str, Any]:
    positional = [*arguments.posonlyargs, *arguments.args]
    defaults = dict(
        zip(
            [a.arg for a in positional[len(positional) - len(arguments.defaults) :]],
            arguments.defaults,
            strict=True,
        )
    )
    for argument, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True):
        if default is not None:
            defaults[argument.arg] = default
    bound: dict[str, Any] = {}
    for argument, value in zip(positional, args, strict=False):
        bound[argument.arg] = value
    if arguments.vararg is not None:
        bound[arguments.vararg.arg] = tuple(args[len(positional) :])
    elif len(args) > len(positional):
        raise GiveUp("too many arguments")
    extra: dict[str, Any] = {}
    for name, value in kwargs.items():
        if any(a.arg == name for a in (*positional, *arguments.kwonlyargs)):
            bound[name] = value
        else:
            extra[name] = value
    if arguments.kwarg is not None:
        bound[arguments.kwarg.arg] = extra
    elif extra:
        raise GiveUp("unexpected keyword")
    for argument in (*positional, *arguments.kwonlyargs):
        if argument.arg not in bound:
            default_node = defaults.get(argument.arg)
            bound[argument.arg] = (
                run.expr(default_node, {}, g) if default_node is not None else UNKNOWN
            )
    return bound


def unknown_call(run: Evaluator, fn: Any, node: ast.Call) -> Any:
    """The value of a call that cannot be run: a module of unknown size when it may build
    one."""
    named = dotted_name(node.func)
    if _may_hold_parameters(run, fn) or (
        fn is UNKNOWN and named is not None and class_like(named.rsplit(".", 1)[-1])
    ):
        return Module((named or "call").rsplit(".", 1)[-1], opaque=True)
    return UNKNOWN


def _may_hold_parameters(run: Evaluator, fn: Any) -> bool:
    if isinstance(fn, ClassRef):
        return run.is_module_class(fn)
    if isinstance(fn, External):
        name = full_name(fn.name)
        last = name.rsplit(".", 1)[-1]
        if name.startswith("torch.nn."):
            return last not in PARAMETERLESS
        if name.startswith(("builtins.", "math.", "torch.")):
            return False
        return class_like(last)
    return False


def _external(
    run: Evaluator, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST
) -> Any:
    short = name.rsplit(".", 1)[-1]
    if name in ("torch.nn.Parameter", "torch.nn.parameter.Parameter"):
        tensor = args[0] if args else kwargs.get("data")
        if isinstance(tensor, Tensor):
            parameter = Tensor(tensor.numel, tensor.dtype)
            run.parameters[id(parameter)] = parameter
            return parameter
        return UNKNOWN
    if name.startswith("torch.nn.") and name.count(".") == 2:
        return torch_modules.layer(run, short, args, kwargs, node)
    if name.count(".") == 1 and name.startswith("torch.") and short in torch_modules.FACTORIES:
        return torch_modules.tensor(short, args, kwargs, run.default_dtype)
    if name.startswith("math.") and short in builtin_calls.MATH:
        return builtin_calls.math_call(short, args)
    if name.startswith("builtins."):
        return builtin_calls.builtin(run, short, args, kwargs)
    return unknown_call(run, External(name), node) if isinstance(node, ast.Call) else UNKNOWN


def _method(run: Evaluator, method: Method, args: list[Any], kwargs: dict[str, Any]) -> Any:
    obj, name = method.obj, method.name
    if isinstance(obj, Module):
        return torch_modules.module_method(obj, name, args, kwargs)
    if isinstance(obj, Tensor):
        return torch_modules.tensor_method(obj, name)
    return builtin_calls.value_method(run, obj, name, args)
