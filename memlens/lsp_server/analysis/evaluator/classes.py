"""Classes of the parsed files: their bases, whether they are ``nn.Module`` classes, the
names their bodies bind, dataclass and ``NamedTuple`` fields, and how an instance is
made (a module's ``__init__`` run on a fresh :class:`Module`, a config object's fields
and ``__post_init__``); attributes read from and written to the values the evaluator
knows."""

from __future__ import annotations

import ast
import weakref
from typing import TYPE_CHECKING, Any

from memlens.lsp_server.analysis.evaluator.values import (
    UNKNOWN,
    ClassRef,
    External,
    Fails,
    FunctionRef,
    GiveUp,
    Instance,
    Method,
    Module,
    OutOfBudget,
    Super,
    Tensor,
    full_name,
)
from memlens.lsp_server.analysis.static_values import dotted_name

if TYPE_CHECKING:
    from memlens.lsp_server.analysis.evaluator.interpreter import Evaluator

_MODULE_BASES = frozenset({"torch.nn.Module", "torch.nn.modules.module.Module"})
_DATACLASS = frozenset({"dataclass", "dataclasses.dataclass"})
_MAX_BASES_DEPTH = 10
_MODULE_METHODS = frozenset({"half", "bfloat16", "float", "double", "to"})
"""Methods of every module the evaluator runs (casts), besides the buffer registries."""


class ClassBody:
    """What a class statement binds, read once while its tree lives."""

    __slots__ = ("__weakref__", "first_functions", "last_bindings", "record")

    def __init__(self, node: ast.ClassDef) -> None:
        self.last_bindings: dict[str, ast.stmt] = {}
        """Name → the last ``def`` or assignment with a value that binds it."""
        self.first_functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        for statement in node.body:
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
                self.last_bindings[statement.name] = statement
                self.first_functions.setdefault(statement.name, statement)
            elif isinstance(statement, ast.Assign | ast.AnnAssign):
                targets = (
                    statement.targets if isinstance(statement, ast.Assign) else [statement.target]
                )
                if statement.value is not None:
                    for target in targets:
                        if isinstance(target, ast.Name):
                            self.last_bindings[target.id] = statement
        decorators = {
            dotted_name(d.func if isinstance(d, ast.Call) else d) for d in node.decorator_list
        }
        bases = {dotted_name(b) for b in node.bases}
        self.record = bool(decorators & _DATACLASS) or bool(
            bases & {"NamedTuple", "typing.NamedTuple"}
        )
        """A ``@dataclass`` or a ``NamedTuple``: made from its fields."""


_BODIES: weakref.WeakKeyDictionary[ast.ClassDef, ClassBody] = weakref.WeakKeyDictionary()


def class_body(node: ast.ClassDef) -> ClassBody:
    """The bindings of a class statement (read once while its tree lives)."""
    found = _BODIES.get(node)
    if found is None:
        found = _BODIES[node] = ClassBody(node)
    return found


def own_function(node: ast.ClassDef, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The first ``def name`` of the class body itself (not of a base)."""
    return class_body(node).first_functions.get(name)


def decorated(node: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> bool:
    """Whether a decorator of ``node`` is ``name`` (``classmethod``)."""
    return any(dotted_name(d) == name for d in node.decorator_list)


def bases(run: Evaluator, cls: ClassRef) -> list[Any]:
    """The values of ``cls``'s bases (unknown where they cannot be evaluated)."""
    values = []
    for node in cls.node.bases:
        try:
            values.append(run.expr(node, {}, cls.globals))
        except GiveUp:
            values.append(UNKNOWN)
    return values


def is_module_class(run: Evaluator, cls: ClassRef, seen: frozenset[int] = frozenset()) -> bool:
    """Whether ``cls`` derives from ``torch.nn.Module`` through classes the run knows."""
    if id(cls.node) in seen:
        return False
    for base in run.bases(cls):
        if isinstance(base, External) and full_name(base.name) in _MODULE_BASES:
            return True
        if isinstance(base, ClassRef) and is_module_class(run, base, seen | {id(cls.node)}):
            return True
    return False


def class_attribute(run: Evaluator, cls: ClassRef, name: str, depth: int = 0) -> Any:
    """A name from the class body (its last binding) or a base class of the file."""
    run.step()
    statement = class_body(cls.node).last_bindings.get(name)
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
        return FunctionRef(statement, cls.globals, owner=cls)
    if isinstance(statement, ast.Assign | ast.AnnAssign) and statement.value is not None:
        return class_default(run, cls, statement.value)
    if depth < _MAX_BASES_DEPTH:
        for base in run.bases(cls):
            if isinstance(base, ClassRef):
                found = class_attribute(run, base, name, depth + 1)
                if found is not UNKNOWN:
                    return found
    return UNKNOWN


def class_default(run: Evaluator, cls: ClassRef, node: ast.expr) -> Any:
    """A class-body value (``field(default=…)`` is its default)."""
    if isinstance(node, ast.Call) and (dotted_name(node.func) or "").endswith("field"):
        for keyword in node.keywords:
            if keyword.arg == "default":
                return run.expr(keyword.value, {}, cls.globals)
            if keyword.arg == "default_factory":
                return run.call(run.expr(keyword.value, {}, cls.globals), [], {}, node)
        return UNKNOWN
    return run.expr(node, {}, cls.globals)


def record_fields(run: Evaluator, cls: ClassRef, depth: int = 0) -> dict[str, Any]:
    """A dataclass's or NamedTuple's fields with their defaults (bases first)."""
    fields: dict[str, Any] = {}
    if depth < _MAX_BASES_DEPTH:
        for base in run.bases(cls):
            if isinstance(base, ClassRef):
                fields.update(record_fields(run, base, depth + 1))
    for statement in cls.node.body:
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            annotation = dotted_name(statement.annotation) or ""
            if annotation.endswith("ClassVar"):
                continue
            fields[statement.target.id] = (
                class_default(run, cls, statement.value) if statement.value else UNKNOWN
            )
    return fields


def instantiate(run: Evaluator, cls: ClassRef, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """``cls(*args, **kwargs)``: a module, or an object of a plain (config) class."""
    if run.is_module_class(cls):
        module = Module(cls.node.name, cls=cls)
        construct(run, cls, module, args, kwargs)
        return module
    instance = Instance(cls)
    if class_body(cls.node).record:
        fields = record_fields(run, cls)
        names = list(fields)
        if len(args) > len(names) or any(k not in fields for k in kwargs):
            raise GiveUp("bad config arguments")
        instance.attrs.update(fields)
        instance.attrs.update(zip(names, args, strict=False))
        instance.attrs.update(kwargs)
        post = class_attribute(run, cls, "__post_init__")
        if isinstance(post, FunctionRef):
            run.run_function(post, [instance], {})
        return instance
    init = class_attribute(run, cls, "__init__")
    if isinstance(init, FunctionRef):
        run.run_function(init, [instance, *args], kwargs, {"__class__": cls})
    elif args or kwargs:
        raise GiveUp("arguments to a class without __init__")
    return instance


def construct(
    run: Evaluator, cls: ClassRef, module: Module, args: list[Any], kwargs: dict[str, Any]
) -> None:
    """Run ``cls.__init__`` (or the nearest base's of the file) on ``module``; a module
    whose ``__init__`` cannot be run is opaque."""
    owner = cls
    init = own_function(cls.node, "__init__")
    while init is None:
        base = next((b for b in run.bases(owner) if isinstance(b, ClassRef)), None)
        if base is None:
            return
        owner, init = base, own_function(base.node, "__init__")
    try:
        run.run_function(
            FunctionRef(init, owner.globals), [module, *args], kwargs, {"__class__": owner}
        )
    except (OutOfBudget, Fails):
        raise
    except GiveUp:
        module.opaque = True


def get_attribute(run: Evaluator, obj: Any, name: str) -> Any:
    """``obj.name`` for a value the evaluator knows; unknown otherwise."""
    if isinstance(obj, External):
        return External(f"{obj.name}.{name}")
    if isinstance(obj, Module):
        for table in (obj.params, obj.buffers, obj.children, obj.attrs):
            if name in table:
                return table[name]
        if name in _MODULE_METHODS or name in ("register_buffer", "register_parameter"):
            return Method(obj, name)
        if name in ("append", "extend") and obj.kind in ("ModuleList", "Sequential"):
            return Method(obj, name)
        if obj.cls is not None:
            return _bound(class_attribute(run, obj.cls, name), obj)
        return UNKNOWN
    if isinstance(obj, Instance):
        if name in obj.attrs:
            return obj.attrs[name]
        return _bound(class_attribute(run, obj.cls, name), obj)
    if isinstance(obj, ClassRef):
        found = class_attribute(run, obj, name)
        if isinstance(found, FunctionRef) and decorated(found.node, "classmethod"):
            return FunctionRef(found.node, found.globals, obj, found.owner)
        return found
    if isinstance(obj, Super) and obj.cls is not None:
        for base in run.bases(obj.cls):
            if isinstance(base, ClassRef):
                found = class_attribute(run, base, name)
                if isinstance(found, FunctionRef):
                    return FunctionRef(found.node, found.globals, obj.owner, found.owner)
        return UNKNOWN
    if isinstance(obj, Tensor) and name in ("weight", "data"):
        return obj
    if isinstance(obj, dict | list | str | Tensor) and not name.startswith("_"):
        return Method(obj, name)
    return UNKNOWN


def _bound(found: Any, obj: Any) -> Any:
    """A method found on ``obj``'s class, bound to ``obj``."""
    if isinstance(found, FunctionRef):
        return FunctionRef(found.node, found.globals, obj, found.owner)
    return found


def set_attribute(run: Evaluator, obj: Any, name: str, value: Any) -> None:
    """``obj.name = value``: on a module, a submodule, a parameter (a tensor
    ``nn.Parameter`` made) or a plain attribute; what the name held before goes (a tied
    ``head.weight = embedding.weight`` leaves one tensor)."""
    if isinstance(obj, Module):
        for table in (obj.params, obj.buffers, obj.children, obj.attrs):
            table.pop(name, None)
        if isinstance(value, Module):
            obj.children[name] = value
        elif isinstance(value, Tensor) and id(value) in run.parameters:
            obj.params[name] = value
        else:
            obj.attrs[name] = value
    elif isinstance(obj, Instance):
        obj.attrs[name] = value
