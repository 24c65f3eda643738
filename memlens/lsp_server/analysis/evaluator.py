"""A small, safe interpreter for the constructor code of ``nn.Module`` classes.

It runs ``__init__`` bodies, config classes (``@dataclass``, ``NamedTuple``, plain classes,
``__post_init__``), small pure functions and classmethods of one parsed file on values it
knows (numbers, strings, tuples, lists, dicts, config objects, modules, tensors with a
size), never importing or executing the user's code. ``torch.nn`` layers come from the
layer tables; ``nn.Parameter(torch.ones(n))`` is a parameter; ``register_buffer`` a
buffer (memory, not parameters); ``a.weight = b.weight`` ties two modules to one tensor,
counted once.

What it does not model is unknown (loops over runtime data, I/O, attributes of unknown
objects); every operation costs a step and a run stops at its budget, so any text ends.
"""

from __future__ import annotations

import ast
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from memlens.lsp_server.analysis.dtype_names import dtype_name, element_bytes
from memlens.lsp_server.analysis.findings import ModelSize
from memlens.lsp_server.analysis.layer_params import LAYERS, PARAMETERLESS
from memlens.lsp_server.analysis.static_values import dotted_name
from memlens.lsp_server.analysis.workspace_modules import ModuleLoader
from memlens.profiler.tensors import FLOAT_DTYPES

logger = logging.getLogger(__name__)

STEP_BUDGET = 200_000
"""Steps (expressions and statements) one evaluation may take before it gives up."""
_MAX_DEPTH = 16
_MAX_INT = 1 << 62
_MAX_ITEMS = 100_000
UNKNOWN: Any = type("Unknown", (), {"__repr__": lambda self: "UNKNOWN"})()


class _GiveUp(Exception):
    """Raised inside a run when something cannot be modelled; the run's value is unknown."""


class _Fails(_GiveUp):
    """The real code would raise here (a failing ``assert``, a ``raise`` reached): no figure."""


class _OutOfBudget(_GiveUp):
    """The evaluation used its step budget (or nested calls too deeply): it ends."""


class _Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


@dataclass(eq=False)
class Tensor:
    """A tensor of known element count (None when its shape is unknown)."""

    numel: int | None
    dtype: str = "fp32"


@dataclass(eq=False)
class Module:
    """An ``nn.Module`` instance: its own parameters, buffers, submodules and attributes."""

    kind: str
    params: dict[str, Tensor] = field(default_factory=dict)
    buffers: dict[str, Tensor] = field(default_factory=dict)
    children: dict[str, Module] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    """Names of parts that may hold parameters but could not be sized."""
    cls: ClassRef | None = None
    opaque: bool = False
    """Built by code the evaluator could not run (all of it may be missing)."""


@dataclass(eq=False)
class Instance:
    """An object of a plain (config) class of the file."""

    cls: ClassRef
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class ClassRef:
    node: ast.ClassDef
    globals: Globals


@dataclass(eq=False)
class FunctionRef:
    node: ast.FunctionDef | ast.AsyncFunctionDef
    globals: Globals
    bound: Any = None
    """The first argument already bound (``self`` or ``cls``), or None."""
    owner: ClassRef | None = None
    """The class whose body defines it (what ``super()`` starts from)."""


@dataclass(frozen=True)
class External:
    """A name from outside the file (``torch.nn.Linear``, ``math.ceil``)."""

    name: str


@dataclass(frozen=True)
class Dtype:
    name: str


class Globals:
    """A file's module-level names: evaluated on first use, at most once."""

    def __init__(self, tree: ast.Module, run: Evaluator) -> None:
        self.run = run
        self.nodes: dict[str, ast.AST] = {}
        self.values: dict[str, Any] = {}
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
                self.nodes[name] = ast.Pass()  # bound more than once: unknown
        self.evaluating: set[str] = set()

    def lookup(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        node = self.nodes.get(name)
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

    def _value(self, name: str, node: ast.AST) -> Any:
        if isinstance(node, ast.ClassDef):
            return ClassRef(node, self)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return FunctionRef(node, self)
        if isinstance(node, ast.alias):
            full = self.aliases[name]
            module, _, attribute = full.rpartition(".")
            imported = self.run.module_globals(module) if name in self.from_imports else None
            if imported is not None:
                return imported.lookup(attribute)
            return External(full)
        if isinstance(node, ast.expr):
            try:
                return self.run.expr(node, {}, self)
            except _GiveUp:
                return UNKNOWN
        return UNKNOWN


def _bindings(statement: ast.stmt) -> Iterator[tuple[str, ast.AST]]:
    if isinstance(statement, ast.Assign):
        for target in statement.targets:
            if isinstance(target, ast.Name):
                yield target.id, (statement.value if len(statement.targets) == 1 else ast.Pass())
            else:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        yield name.id, ast.Pass()
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
                yield node.id, ast.Pass()


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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Div: lambda a, b: a / b,
    ast.Mod: lambda a, b: a % b,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: bool(a == b),
    ast.NotEq: lambda a, b: bool(a != b),
    ast.Lt: lambda a, b: bool(a < b),
    ast.LtE: lambda a, b: bool(a <= b),
    ast.Gt: lambda a, b: bool(a > b),
    ast.GtE: lambda a, b: bool(a >= b),
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: lambda a, b: a is b,
    ast.IsNot: lambda a, b: a is not b,
}
_TENSOR_FACTORIES = frozenset({"ones", "zeros", "empty", "randn", "rand", "full", "arange"})
_MODULE_BASES = frozenset({"torch.nn.Module", "torch.nn.modules.module.Module"})
_DATACLASS = frozenset({"dataclass", "dataclasses.dataclass"})
_DTYPES = frozenset({*(str(d) for d in FLOAT_DTYPES), "fp64"})
_CASTS = {"half": "fp16", "bfloat16": "bf16", "float": "fp32", "double": "fp64"}


class Evaluator:
    """One evaluation: a step budget shared by everything it runs."""

    def __init__(
        self, tree: ast.Module, budget: int = STEP_BUDGET, loader: ModuleLoader | None = None
    ) -> None:
        self.steps = budget
        self.depth = 0
        self.loader = loader
        self.modules: dict[str, Globals | None] = {}
        """Workspace modules followed so far (None: not found or not followed)."""
        self.globals = Globals(tree, self)
        self.parameters: dict[int, Tensor] = {}
        """Tensors ``nn.Parameter`` made, by identity."""
        self.layer_params: dict[int, int | None] = {}
        """``id(call)`` of each ``torch.nn`` layer constructor run → its parameters (None
        when two runs disagree)."""
        self.default_dtype = "fp32"
        """The dtype of float tensors made without one (``torch.set_default_dtype``)."""

    def module_globals(self, spec: str) -> Globals | None:
        """The names of a workspace module a ``from … import`` names (``.layers``)."""
        if self.loader is None or spec.split(".")[0] in ("torch", "transformers", "math"):
            return None
        if spec not in self.modules:
            self.modules[spec] = None  # an import cycle stops here
            tree = self.loader(spec)
            self.modules[spec] = Globals(tree, self) if tree is not None else None
        return self.modules[spec]

    def step(self) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise _OutOfBudget("budget")

    # -- classes ---------------------------------------------------------------------
    def is_module_class(self, cls: ClassRef, seen: frozenset[int] = frozenset()) -> bool:
        if id(cls.node) in seen:
            return False
        for base in cls.node.bases:
            value = self._base(base, cls.globals)
            if isinstance(value, External) and _full(value.name) in _MODULE_BASES:
                return True
            if isinstance(value, ClassRef) and self.is_module_class(value, seen | {id(cls.node)}):
                return True
        return False

    def _base(self, node: ast.expr, globals_: Globals) -> Any:
        try:
            return self.expr(node, {}, globals_)
        except _GiveUp:
            return UNKNOWN

    # -- statements -------------------------------------------------------------------
    def block(self, statements: list[ast.stmt], env: dict[str, Any], g: Globals) -> None:
        for statement in statements:
            self.statement(statement, env, g)

    def statement(self, node: ast.stmt, env: dict[str, Any], g: Globals) -> None:
        self.step()
        if isinstance(node, ast.Assign):
            value = self.expr(node.value, env, g)
            for target in node.targets:
                self.assign(target, value, env, g)
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None:
                self.assign(node.target, self.expr(node.value, env, g), env, g)
        elif isinstance(node, ast.AugAssign):
            current = self.expr(_load(node.target), env, g)
            value = self._binary(node.op, current, self.expr(node.value, env, g))
            self.assign(node.target, value, env, g)
        elif isinstance(node, ast.Expr):
            self.expr(node.value, env, g)
        elif isinstance(node, ast.Return):
            raise _Return(self.expr(node.value, env, g) if node.value else None)
        elif isinstance(node, ast.If):
            test = self.truth(self.expr(node.test, env, g))
            if test is None:
                self.unknown_branches([node.body, node.orelse], env)
            else:
                self.block(node.body if test else node.orelse, env, g)
        elif isinstance(node, ast.For):
            self._for(node, env, g)
        elif isinstance(node, ast.With):
            self.block(node.body, env, g)
        elif isinstance(node, ast.Assert):
            if self.truth(self.expr(node.test, env, g)) is False:
                raise _Fails("assertion fails")
        elif isinstance(node, ast.Pass | ast.Import | ast.ImportFrom):
            pass
        elif isinstance(node, ast.FunctionDef):
            env[node.name] = FunctionRef(node, g)
        elif isinstance(node, ast.Raise):
            raise _Fails("raise")
        else:
            self.unknown_branches([[node]], env)

    def _for(self, node: ast.For, env: dict[str, Any], g: Globals) -> None:
        items = self.iterate(self.expr(node.iter, env, g))
        if items is None:
            self.unknown_branches([node.body], env)
            return
        for item in items:
            self.assign(node.target, item, env, g)
            self.block(node.body, env, g)
        self.block(node.orelse, env, g)

    def unknown_branches(self, blocks: list[list[ast.stmt]], env: dict[str, Any]) -> None:
        """Code not run: what it binds is unknown; a module it may build is an unknown part."""
        owner = env.get("self")
        for statement in (s for block in blocks for s in block):
            for node in ast.walk(statement):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    env[node.id] = UNKNOWN
                elif (
                    isinstance(owner, Module)
                    and isinstance(node, ast.Attribute)
                    and isinstance(node.ctx, ast.Store)
                ):
                    if _may_build_module(statement):
                        owner.unknown.append(node.attr)
                    owner.attrs[node.attr] = UNKNOWN

    def assign(self, target: ast.expr, value: Any, env: dict[str, Any], g: Globals) -> None:
        if isinstance(target, ast.Name):
            env[target.id] = value
        elif isinstance(target, ast.Tuple | ast.List):
            items = self.iterate(value)
            if items is None or len(items) != len(target.elts):
                for element in target.elts:
                    self.assign(element, UNKNOWN, env, g)
                return
            for element, item in zip(target.elts, items, strict=True):
                self.assign(element, item, env, g)
        elif isinstance(target, ast.Attribute):
            self.set_attribute(self.expr(target.value, env, g), target.attr, value, target)
        elif isinstance(target, ast.Subscript):
            container = self.expr(target.value, env, g)
            key = self.expr(target.slice, env, g)
            if isinstance(container, dict) and _hashable(key):
                container[key] = value

    def set_attribute(self, obj: Any, name: str, value: Any, node: ast.expr) -> None:
        if isinstance(obj, Module):
            for table in (obj.params, obj.buffers, obj.children, obj.attrs):
                table.pop(name, None)
            if isinstance(value, Module):
                obj.children[name] = value
            elif isinstance(value, Tensor) and (id(value) in self.parameters or name in obj.params):
                obj.params[name] = value
            else:
                obj.attrs[name] = value
        elif isinstance(obj, Instance):
            obj.attrs[name] = value

    # -- expressions ------------------------------------------------------------------
    def expr(self, node: ast.expr | None, env: dict[str, Any], g: Globals) -> Any:
        if node is None:
            return None
        self.step()
        handler = _EXPRESSIONS.get(type(node))
        return handler(self, node, env, g) if handler else UNKNOWN

    def _name(self, node: ast.Name, env: dict[str, Any], g: Globals) -> Any:
        if node.id in env:
            return env[node.id]
        return g.lookup(node.id)

    def _constant(self, node: ast.Constant, env: dict[str, Any], g: Globals) -> Any:
        return node.value

    def _sequence(self, node: ast.Tuple | ast.List, env: dict[str, Any], g: Globals) -> Any:
        items: list[Any] = []
        for element in node.elts:
            if isinstance(element, ast.Starred):
                inner = self.iterate(self.expr(element.value, env, g))
                if inner is None:
                    return UNKNOWN
                items.extend(inner)
            else:
                items.append(self.expr(element, env, g))
        return tuple(items) if isinstance(node, ast.Tuple) else items

    def _dict(self, node: ast.Dict, env: dict[str, Any], g: Globals) -> Any:
        result: dict[Any, Any] = {}
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:
                inner = self.expr(value, env, g)
                if not isinstance(inner, dict):
                    return UNKNOWN
                result.update(inner)
                continue
            k = self.expr(key, env, g)
            if not _hashable(k):
                return UNKNOWN
            result[k] = self.expr(value, env, g)
        return result

    def _binop(self, node: ast.BinOp, env: dict[str, Any], g: Globals) -> Any:
        return self._binary(node.op, self.expr(node.left, env, g), self.expr(node.right, env, g))

    def _binary(self, op: ast.operator, left: Any, right: Any) -> Any:
        numbers = (int, float)
        if isinstance(op, ast.Pow):
            if _is_int(left) and _is_int(right) and 0 <= right <= 64 and abs(left) < 1 << 20:
                result = left**right
                return result if abs(result) < _MAX_INT else UNKNOWN
            if isinstance(left, numbers) and isinstance(right, numbers) and abs(right) < 64:
                try:
                    return float(left) ** float(right)
                except (OverflowError, ZeroDivisionError):
                    return UNKNOWN
            return UNKNOWN
        fn = _BINARY.get(type(op))
        if fn is None:
            return UNKNOWN
        if isinstance(left, numbers) and isinstance(right, numbers):
            try:
                result = fn(left, right)
            except (ZeroDivisionError, OverflowError):
                return UNKNOWN
            return result if abs(result) < _MAX_INT else UNKNOWN
        sequences = (str, tuple, list)
        if isinstance(op, ast.Add) and isinstance(left, sequences) and type(left) is type(right):
            joined: Any = left + right  # type: ignore[operator]
            return joined if len(joined) < _MAX_ITEMS else UNKNOWN
        if (
            isinstance(op, ast.Mult)
            and isinstance(left, sequences)
            and _is_int(right)
            and len(left) * max(right, 0) < _MAX_ITEMS
        ):
            return left * right
        return UNKNOWN

    def _unary(self, node: ast.UnaryOp, env: dict[str, Any], g: Globals) -> Any:
        operand = self.expr(node.operand, env, g)
        if isinstance(node.op, ast.Not):
            truth = self.truth(operand)
            return UNKNOWN if truth is None else not truth
        if isinstance(operand, int | float) and not isinstance(operand, bool):
            return -operand if isinstance(node.op, ast.USub) else operand
        return UNKNOWN

    def _boolop(self, node: ast.BoolOp, env: dict[str, Any], g: Globals) -> Any:
        value: Any = UNKNOWN
        for operand in node.values:
            value = self.expr(operand, env, g)
            truth = self.truth(value)
            if truth is None:
                return UNKNOWN
            if truth == isinstance(node.op, ast.Or):
                return value
        return value

    def _compare(self, node: ast.Compare, env: dict[str, Any], g: Globals) -> Any:
        left = self.expr(node.left, env, g)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.expr(comparator, env, g)
            if left is UNKNOWN or right is UNKNOWN:
                return UNKNOWN
            if isinstance(op, ast.Is | ast.IsNot) and (left is None or right is None):
                pass
            elif not (_plain(left) and (_plain(right) or isinstance(right, list | dict))):
                return UNKNOWN
            try:
                if not _COMPARE[type(op)](left, right):
                    return False
            except TypeError:
                return UNKNOWN
            left = right
        return True

    def _ifexp(self, node: ast.IfExp, env: dict[str, Any], g: Globals) -> Any:
        truth = self.truth(self.expr(node.test, env, g))
        if truth is None:
            return UNKNOWN
        return self.expr(node.body if truth else node.orelse, env, g)

    def _subscript(self, node: ast.Subscript, env: dict[str, Any], g: Globals) -> Any:
        container = self.expr(node.value, env, g)
        key = self.expr(node.slice, env, g)
        if isinstance(container, dict) and _hashable(key):
            return container.get(key, UNKNOWN)
        if isinstance(container, list | tuple | str) and (_is_int(key) or isinstance(key, slice)):
            try:
                return container[key]
            except IndexError:
                return UNKNOWN
        if isinstance(container, Module) and _is_int(key):
            children = list(container.children.values())
            return children[key] if -len(children) <= key < len(children) else UNKNOWN
        return UNKNOWN

    def _slice(self, node: ast.Slice, env: dict[str, Any], g: Globals) -> Any:
        parts = [self.expr(p, env, g) if p else None for p in (node.lower, node.upper, node.step)]
        if all(p is None or _is_int(p) for p in parts) and parts[2] != 0:
            return slice(*parts)
        return UNKNOWN

    def _attribute(self, node: ast.Attribute, env: dict[str, Any], g: Globals) -> Any:
        return self.attribute(self.expr(node.value, env, g), node.attr)

    def attribute(self, obj: Any, name: str) -> Any:
        if isinstance(obj, External):
            return External(f"{obj.name}.{name}")
        if isinstance(obj, Module):
            for table in (obj.params, obj.buffers, obj.children, obj.attrs):
                if name in table:
                    return table[name]
            if name in _CASTS or name in ("to", "register_buffer", "register_parameter"):
                return _Method(obj, name)
            if name in ("append", "extend") and obj.kind in ("ModuleList", "Sequential"):
                return _Method(obj, name)
            if obj.cls is not None:
                found = self.class_attribute(obj.cls, name)
                if isinstance(found, FunctionRef):
                    return FunctionRef(found.node, found.globals, obj, found.owner)
                return found
            return UNKNOWN
        if isinstance(obj, Instance):
            if name in obj.attrs:
                return obj.attrs[name]
            found = self.class_attribute(obj.cls, name)
            if isinstance(found, FunctionRef):
                return FunctionRef(found.node, found.globals, obj, found.owner)
            return found
        if isinstance(obj, ClassRef):
            found = self.class_attribute(obj, name)
            if isinstance(found, FunctionRef) and _decorated(found.node, "classmethod"):
                return FunctionRef(found.node, found.globals, obj, found.owner)
            return found
        if isinstance(obj, _Super) and obj.cls is not None:
            for base in obj.cls.node.bases:
                value = self._base(base, obj.cls.globals)
                if isinstance(value, ClassRef):
                    found = self.class_attribute(value, name)
                    if isinstance(found, FunctionRef):
                        return FunctionRef(found.node, found.globals, obj.owner, found.owner)
            return UNKNOWN
        if isinstance(obj, Tensor) and name in ("weight", "data"):
            return obj
        if isinstance(obj, dict | list | str | Tensor) and not name.startswith("_"):
            return _Method(obj, name)
        return UNKNOWN

    def class_attribute(self, cls: ClassRef, name: str, depth: int = 0) -> Any:
        """A name from the class body (its last binding) or a base class of the file."""
        for statement in reversed(cls.node.body):
            self.step()
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
                if statement.name == name:
                    return FunctionRef(statement, cls.globals, owner=cls)
            elif isinstance(statement, ast.Assign | ast.AnnAssign):
                targets = (
                    statement.targets if isinstance(statement, ast.Assign) else [statement.target]
                )
                if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                    if statement.value is None:
                        continue
                    return self.class_default(cls, statement.value)
        if depth < 10:
            for base in cls.node.bases:
                value = self._base(base, cls.globals)
                if isinstance(value, ClassRef):
                    found = self.class_attribute(value, name, depth + 1)
                    if found is not UNKNOWN:
                        return found
        return UNKNOWN

    def class_default(self, cls: ClassRef, node: ast.expr) -> Any:
        """A class-body value (``field(default=…)`` is its default)."""
        if isinstance(node, ast.Call) and (dotted_name(node.func) or "").endswith("field"):
            for keyword in node.keywords:
                if keyword.arg == "default":
                    return self.expr(keyword.value, {}, cls.globals)
                if keyword.arg == "default_factory":
                    return self.call(self.expr(keyword.value, {}, cls.globals), [], {}, node)
            return UNKNOWN
        return self.expr(node, {}, cls.globals)

    def _comprehension(
        self, node: ast.ListComp | ast.GeneratorExp | ast.DictComp, env: dict[str, Any], g: Globals
    ) -> Any:
        results: list[Any] = []
        if not self._generate(node, node.generators, dict(env), g, results):
            return UNKNOWN
        if isinstance(node, ast.DictComp):
            return dict(results) if all(_hashable(k) for k, _ in results) else UNKNOWN
        return results if isinstance(node, ast.ListComp) else tuple(results)

    def _generate(
        self,
        node: ast.ListComp | ast.GeneratorExp | ast.DictComp,
        generators: list[ast.comprehension],
        env: dict[str, Any],
        g: Globals,
        results: list[Any],
    ) -> bool:
        if not generators:
            if isinstance(node, ast.DictComp):
                results.append((self.expr(node.key, env, g), self.expr(node.value, env, g)))
            else:
                results.append(self.expr(node.elt, env, g))
            return True
        first, rest = generators[0], generators[1:]
        items = self.iterate(self.expr(first.iter, env, g))
        if items is None:
            return False
        for item in items:
            self.assign(first.target, item, env, g)
            conditions = [self.truth(self.expr(c, env, g)) for c in first.ifs]
            if None in conditions:
                return False
            if all(conditions) and not self._generate(node, rest, env, g, results):
                return False
        return True

    def _call_node(self, node: ast.Call, env: dict[str, Any], g: Globals) -> Any:
        fn = self.expr(node.func, env, g)
        args: list[Any] = []
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                items = self.iterate(self.expr(arg.value, env, g))
                if items is None:
                    return self.unknown_call(fn, node)
                args.extend(items)
            else:
                args.append(self.expr(arg, env, g))
        kwargs: dict[str, Any] = {}
        for keyword in node.keywords:
            value = self.expr(keyword.value, env, g)
            if keyword.arg is None:
                if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                    return self.unknown_call(fn, node)
                kwargs.update(value)
            else:
                kwargs[keyword.arg] = value
        if isinstance(fn, External) and _full(fn.name) == "builtins.super":
            owner = env.get("self")
            return _Super(owner, env.get("__class__")) if owner is not None else UNKNOWN
        return self.call(fn, args, kwargs, node)

    def unknown_call(self, fn: Any, node: ast.Call) -> Any:
        """The value of a call that cannot be run: a module of unknown size when it may
        build one."""
        named = dotted_name(node.func)
        if _may_hold_parameters(fn, self) or (
            fn is UNKNOWN and named is not None and _class_like(named.rsplit(".", 1)[-1])
        ):
            return Module(_call_label(node), opaque=True)
        return UNKNOWN

    # -- calls ------------------------------------------------------------------------
    def call(self, fn: Any, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        self.step()
        if isinstance(fn, ClassRef):
            return self.instantiate(fn, args, kwargs, node)
        if isinstance(fn, FunctionRef):
            bound = [fn.bound] if fn.bound is not None else []
            return self.run_function(fn, [*bound, *args], kwargs, {"__class__": fn.owner})
        if isinstance(fn, _Method):
            return fn.call(self, args, kwargs)
        if isinstance(fn, _Super):
            return UNKNOWN
        if isinstance(fn, External):
            return self.external(_full(fn.name), args, kwargs, node)
        if isinstance(node, ast.Call):
            return self.unknown_call(fn, node)
        return UNKNOWN

    def run_function(
        self,
        fn: FunctionRef,
        args: list[Any],
        kwargs: dict[str, Any],
        env: dict[str, Any] | None = None,
    ) -> Any:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            self.depth -= 1
            raise _OutOfBudget("depth")
        try:
            local = dict(env or {})
            local.update(self.bind(fn.node.args, args, kwargs, fn.globals))
            try:
                self.block(fn.node.body, local, fn.globals)
            except _Return as returned:
                return returned.value
            return None
        finally:
            self.depth -= 1

    def bind(
        self, arguments: ast.arguments, args: list[Any], kwargs: dict[str, Any], g: Globals
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
            raise _GiveUp("too many arguments")
        extra: dict[str, Any] = {}
        for name, value in kwargs.items():
            if any(a.arg == name for a in (*positional, *arguments.kwonlyargs)):
                bound[name] = value
            else:
                extra[name] = value
        if arguments.kwarg is not None:
            bound[arguments.kwarg.arg] = extra
        elif extra:
            raise _GiveUp("unexpected keyword")
        for argument in (*positional, *arguments.kwonlyargs):
            if argument.arg not in bound:
                default_node = defaults.get(argument.arg)
                bound[argument.arg] = (
                    self.expr(default_node, {}, g) if default_node is not None else UNKNOWN
                )
        return bound

    def instantiate(
        self, cls: ClassRef, args: list[Any], kwargs: dict[str, Any], node: ast.AST
    ) -> Any:
        if self.is_module_class(cls):
            module = Module(cls.node.name, cls=cls)
            self.construct(cls, module, args, kwargs)
            return module
        instance = Instance(cls)
        if _is_record(cls):
            fields = self.record_fields(cls)
            names = list(fields)
            if len(args) > len(names) or any(k not in fields for k in kwargs):
                raise _GiveUp("bad config arguments")
            instance.attrs.update(fields)
            instance.attrs.update(zip(names, args, strict=False))
            instance.attrs.update(kwargs)
            post = self.class_attribute(cls, "__post_init__")
            if isinstance(post, FunctionRef):
                self.run_function(post, [instance], {})
            return instance
        init = self.class_attribute(cls, "__init__")
        if isinstance(init, FunctionRef):
            self.run_function(init, [instance, *args], kwargs, {"__class__": cls})
        elif args or kwargs:
            raise _GiveUp("arguments to a class without __init__")
        return instance

    def record_fields(self, cls: ClassRef, depth: int = 0) -> dict[str, Any]:
        """A dataclass's or NamedTuple's fields with their defaults (bases first)."""
        fields: dict[str, Any] = {}
        if depth < 10:
            for base in cls.node.bases:
                value = self._base(base, cls.globals)
                if isinstance(value, ClassRef):
                    fields.update(self.record_fields(value, depth + 1))
        for statement in cls.node.body:
            if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                annotation = dotted_name(statement.annotation) or ""
                if annotation.endswith("ClassVar"):
                    continue
                fields[statement.target.id] = (
                    self.class_default(cls, statement.value) if statement.value else UNKNOWN
                )
        return fields

    def construct(
        self, cls: ClassRef, module: Module, args: list[Any], kwargs: dict[str, Any]
    ) -> None:
        """Run ``cls.__init__`` (or the nearest base's of the file) on ``module``."""
        owner = cls
        init = _own_function(cls.node, "__init__")
        while init is None:
            base = next(
                (
                    b
                    for b in (self._base(n, owner.globals) for n in owner.node.bases)
                    if isinstance(b, ClassRef)
                ),
                None,
            )
            if base is None:
                return
            owner, init = base, _own_function(base.node, "__init__")
        try:
            self.run_function(
                FunctionRef(init, owner.globals), [module, *args], kwargs, {"__class__": owner}
            )
        except (_OutOfBudget, _Fails):
            raise
        except _GiveUp:
            module.opaque = True

    def external(self, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        short = name.rsplit(".", 1)[-1]
        if name in ("torch.nn.Parameter", "torch.nn.parameter.Parameter"):
            tensor = args[0] if args else kwargs.get("data")
            if isinstance(tensor, Tensor):
                parameter = Tensor(tensor.numel, tensor.dtype)
                self.parameters[id(parameter)] = parameter
                return parameter
            return UNKNOWN
        if name.startswith("torch.nn.") and name.count(".") == 2:
            return self.layer(short, args, kwargs, node)
        if name.startswith("torch.") and short in _TENSOR_FACTORIES and name.count(".") == 1:
            return _tensor(short, args, kwargs, self.default_dtype)
        if name.startswith("math.") and short in ("ceil", "floor", "sqrt", "prod", "log2"):
            return _math(short, args)
        if name.startswith("builtins."):
            return _builtin(self, short, args, kwargs)
        return self.unknown_call(External(name), node) if isinstance(node, ast.Call) else UNKNOWN

    def layer(self, kind: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        dtype = _dtype_of(kwargs.pop("dtype", self.default_dtype))
        kwargs.pop("device", None)
        if kind in ("ModuleList", "Sequential", "ModuleDict"):
            return _container(kind, args, kwargs)
        if kind in PARAMETERLESS:
            return Module(kind)
        signature = LAYERS.get(kind)
        module = Module(kind)
        if signature is None or dtype is None:
            module.opaque = True
            return module
        arguments: dict[str, Any] = dict(signature.defaults)
        arguments.update(zip(signature.parameters, args, strict=False))
        arguments.update(kwargs)
        if set(arguments) - set(signature.parameters) or set(signature.parameters) - set(arguments):
            module.opaque = True
            return module
        known = {k: (None if v is UNKNOWN else v) for k, v in arguments.items()}
        try:
            count = signature.count(known)
        except (TypeError, KeyError):
            count = None
        if count is None:
            module.opaque = True
            return module
        seen = self.layer_params.setdefault(id(node), count)
        if seen != count:
            self.layer_params[id(node)] = None
        if kind in ("Linear", "Embedding"):
            rows: int = arguments["out_features" if kind == "Linear" else "num_embeddings"]
            cols: int = arguments["in_features" if kind == "Linear" else "embedding_dim"]
            module.params["weight"] = Tensor(rows * cols, dtype)
            if count > rows * cols:
                module.params["bias"] = Tensor(count - rows * cols, dtype)
        elif count:
            module.params["weight"] = Tensor(count, dtype)
        return module

    # -- helpers ----------------------------------------------------------------------
    def truth(self, value: Any) -> bool | None:
        if _plain(value) or isinstance(value, Instance | Module | list | dict | tuple):
            try:
                return bool(value)
            except TypeError:
                return None
        return None

    def iterate(self, value: Any) -> list[Any] | None:
        if isinstance(value, range):
            if abs(value.stop - value.start) // max(abs(value.step), 1) > self.steps:
                raise _OutOfBudget("budget")
            return list(value)
        if isinstance(value, list | tuple | str):
            return list(value)
        if isinstance(value, dict):
            return list(value)
        if isinstance(value, Module) and value.kind in ("ModuleList", "Sequential"):
            return list(value.children.values())
        return None


@dataclass(eq=False)
class _Method:
    """A method of a value the evaluator knows, bound to it."""

    obj: Any
    name: str

    def call(self, run: Evaluator, args: list[Any], kwargs: dict[str, Any]) -> Any:
        obj, name = self.obj, self.name
        if isinstance(obj, Module):
            return _module_method(obj, name, args, kwargs)
        if isinstance(obj, Tensor):
            if name in _CASTS:
                return Tensor(obj.numel, _CASTS[name])
            return Tensor(obj.numel, obj.dtype) if name in ("to", "clone", "detach") else UNKNOWN
        if isinstance(obj, dict):
            if name == "get" and args and _hashable(args[0]):
                return obj.get(args[0], args[1] if len(args) > 1 else None)
            if name in ("keys", "values", "items") and not args:
                return list(getattr(obj, name)())
            if name == "update" and args and isinstance(args[0], dict):
                obj.update(args[0])
                return None
        if isinstance(obj, list) and name in ("append", "extend") and len(args) == 1:
            if name == "append":
                obj.append(args[0])
            else:
                items = run.iterate(args[0])
                if items is None:
                    raise _GiveUp("extend")
                obj.extend(items)
            if len(obj) > _MAX_ITEMS:
                raise _GiveUp("list too long")
            return None
        if isinstance(obj, str) and name in ("lower", "upper", "strip") and not args:
            return getattr(obj, name)()
        if (
            isinstance(obj, str)
            and name in ("startswith", "endswith")
            and len(args) == 1
            and isinstance(args[0], str)
        ):
            return getattr(obj, name)(args[0])
        return UNKNOWN


def _module_method(module: Module, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    if name in _CASTS and not args:
        _cast(module, _CASTS[name])
        return module
    if name == "to":
        for value in (*args, kwargs.get("dtype")):
            dtype = _dtype_of(value) if isinstance(value, External | str) else None
            if dtype is not None:
                _cast(module, dtype)
        return module
    if name in ("register_buffer", "register_parameter") and len(args) >= 2:
        key, tensor = args[0], args[1]
        if isinstance(key, str) and isinstance(tensor, Tensor):
            (module.buffers if name == "register_buffer" else module.params)[key] = tensor
        elif isinstance(key, str) and tensor is not None:
            module.unknown.append(key)
        return None
    if name in ("append", "extend", "add_module") and module.kind in ("ModuleList", "Sequential"):
        items = args if name == "append" else (list(args[0]) if args else [])
        for item in items:
            _add_child(module, str(len(module.children)), item)
        return None
    return UNKNOWN


def _cast(module: Module, dtype: str) -> None:
    for table in (module.params, module.buffers):
        for tensor in table.values():
            tensor.dtype = dtype
    for child in module.children.values():
        _cast(child, dtype)


@dataclass(eq=False)
class _Super:
    """``super()`` in a method of ``cls`` called on ``owner``."""

    owner: Any
    cls: ClassRef | None


def _add_child(container: Module, key: str, item: Any) -> None:
    if isinstance(item, Module):
        container.children[key] = item
    elif item is UNKNOWN:
        container.unknown.append(key)


def _container(kind: str, args: list[Any], kwargs: dict[str, Any]) -> Module:
    module = Module(kind)
    if kind == "Sequential":
        items: Any = args[0] if len(args) == 1 and isinstance(args[0], dict) else args
    else:
        items = args[0] if args else kwargs.get("modules", kwargs.get("modules", []))
    if isinstance(items, dict):
        for key, value in items.items():
            _add_child(module, str(key), value)
    elif isinstance(items, list | tuple):
        for index, value in enumerate(items):
            _add_child(module, str(index), value)
    elif items is not None:
        module.opaque = True
    return module


def _tensor(kind: str, args: list[Any], kwargs: dict[str, Any], default: str) -> Any:
    dtype = _dtype_of(kwargs.get("dtype", default)) or default
    if kind == "arange":
        bounds = [a for a in args if _is_int(a)]
        if len(bounds) != len(args) or not 1 <= len(bounds) <= 3:
            return Tensor(None, dtype)
        return Tensor(len(range(*bounds)) if bounds[-1:] != [0] or len(bounds) < 3 else 0, dtype)
    shape = args[:1] if kind == "full" else args
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        shape = list(shape[0])
    if "size" in kwargs and isinstance(kwargs["size"], tuple | list):
        shape = list(kwargs["size"])
    if not all(_is_int(s) and s >= 0 for s in shape):
        return Tensor(None, dtype)
    numel = math.prod(shape)
    return Tensor(numel if numel < _MAX_INT else None, dtype)


def _math(name: str, args: list[Any]) -> Any:
    if name == "prod":
        items = args[0] if args and isinstance(args[0], list | tuple) else None
        if items is not None and all(_is_int(i) for i in items):
            result = math.prod(items)
            return result if abs(result) < _MAX_INT else UNKNOWN
        return UNKNOWN
    if len(args) != 1 or not isinstance(args[0], int | float) or isinstance(args[0], bool):
        return UNKNOWN
    try:
        return getattr(math, name)(args[0])
    except (ValueError, OverflowError):
        return UNKNOWN


_REDUCERS: dict[str, Callable[..., Any]] = {"max": max, "min": min, "sum": sum, "sorted": sorted}
_CONVERSIONS: dict[str, Callable[..., Any]] = {
    "int": int,
    "float": float,
    "abs": abs,
    "round": round,
    "bool": bool,
    "str": str,
    "divmod": divmod,
}


def _builtin(run: Evaluator, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    plain = all(_plain(a) or isinstance(a, list | tuple | dict) for a in args)
    if name == "range" and 1 <= len(args) <= 3 and all(_is_int(a) for a in args):
        return range(*args) if args[-1] != 0 or len(args) < 3 else UNKNOWN
    if name == "dict" and not args:
        return dict(kwargs)
    if name == "dict" and len(args) == 1 and isinstance(args[0], dict):
        return {**args[0], **kwargs}
    if name in ("list", "tuple") and len(args) == 1:
        items = run.iterate(args[0])
        return UNKNOWN if items is None else (items if name == "list" else tuple(items))
    if name == "len" and len(args) == 1 and isinstance(args[0], list | tuple | dict | str | range):
        return len(args[0])
    if name == "enumerate" and len(args) == 1:
        items = run.iterate(args[0])
        return UNKNOWN if items is None else list(enumerate(items))
    if name == "zip" and args:
        lists = [run.iterate(a) for a in args]
        if any(items is None for items in lists):
            return UNKNOWN
        return [tuple(group) for group in zip(*[items or [] for items in lists], strict=False)]
    if name == "isinstance":
        return UNKNOWN
    if name in ("getattr", "hasattr") and len(args) >= 2 and isinstance(args[1], str):
        value = run.attribute(args[0], args[1])
        if name == "hasattr":
            return UNKNOWN if value is UNKNOWN else True
        return args[2] if value is UNKNOWN and len(args) == 3 else value
    if not plain or kwargs or any(a is UNKNOWN for a in args):
        return UNKNOWN
    try:
        items = args[0] if len(args) == 1 and name in _REDUCERS else args
        function = _REDUCERS.get(name) or _CONVERSIONS[name]
        result = function(items) if name in _REDUCERS else function(*args)
    except (TypeError, ValueError, KeyError, OverflowError, ZeroDivisionError):
        return UNKNOWN
    if isinstance(result, str) and len(result) > _MAX_ITEMS:
        return UNKNOWN
    return result


def _dtype_of(value: Any) -> str | None:
    if isinstance(value, str) and value in _DTYPES:
        return value
    name = value.name if isinstance(value, External) else value if isinstance(value, str) else ""
    if not name:
        return None
    dtype = dtype_name(name)
    return dtype if dtype in _DTYPES else None


def _full(name: str) -> str:
    """``nn.Linear`` → ``torch.nn.Linear`` (``nn`` unimported is taken as torch's)."""
    return "torch." + name if name.startswith("nn.") else name


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, int | float | str | bool | tuple)


def _hashable(value: Any) -> bool:
    return value is None or isinstance(value, int | float | str | bool | tuple)


def _decorated(node: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> bool:
    return any(dotted_name(d) == name for d in node.decorator_list)


def _own_function(node: ast.ClassDef, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    return next(
        (
            s
            for s in node.body
            if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef) and s.name == name
        ),
        None,
    )


def _is_record(cls: ClassRef) -> bool:
    decorators = {
        dotted_name(d.func if isinstance(d, ast.Call) else d) for d in cls.node.decorator_list
    }
    bases = {dotted_name(b) for b in cls.node.bases}
    return bool(decorators & _DATACLASS) or bool(bases & {"NamedTuple", "typing.NamedTuple"})


def _load(target: ast.expr) -> ast.expr:
    copy = ast.Name(target.id, ast.Load()) if isinstance(target, ast.Name) else target
    return ast.copy_location(copy, target)


def _call_label(node: ast.Call) -> str:
    return (dotted_name(node.func) or "call").rsplit(".", 1)[-1]


def _may_hold_parameters(fn: Any, run: Evaluator) -> bool:
    if isinstance(fn, ClassRef):
        return run.is_module_class(fn)
    if isinstance(fn, External):
        name = _full(fn.name)
        last = name.rsplit(".", 1)[-1]
        if name.startswith("torch.nn."):
            return last not in PARAMETERLESS
        if name.startswith(("builtins.", "math.", "torch.")):
            return False
        return _class_like(last)
    return False


def _class_like(name: str) -> bool:
    return name[:1].isupper() and not name.endswith(("Config", "Error", "Exception", "Warning"))


def _may_build_module(statement: ast.stmt) -> bool:
    for node in ast.walk(statement):
        if isinstance(node, ast.Call):
            last = (dotted_name(node.func) or "").rsplit(".", 1)[-1]
            if last == "Parameter" or (_class_like(last) and last not in PARAMETERLESS):
                return True
    return False


_EXPRESSIONS: dict[type[ast.expr], Callable[[Evaluator, Any, dict[str, Any], Globals], Any]] = {
    ast.Name: Evaluator._name,
    ast.Constant: Evaluator._constant,
    ast.Tuple: Evaluator._sequence,
    ast.List: Evaluator._sequence,
    ast.Dict: Evaluator._dict,
    ast.BinOp: Evaluator._binop,
    ast.UnaryOp: Evaluator._unary,
    ast.BoolOp: Evaluator._boolop,
    ast.Compare: Evaluator._compare,
    ast.IfExp: Evaluator._ifexp,
    ast.Subscript: Evaluator._subscript,
    ast.Slice: Evaluator._slice,
    ast.Attribute: Evaluator._attribute,
    ast.ListComp: Evaluator._comprehension,
    ast.GeneratorExp: Evaluator._comprehension,
    ast.DictComp: Evaluator._comprehension,
    ast.Call: Evaluator._call_node,
}


def module_size(module: Module) -> ModelSize:
    """Parameters and bytes of an evaluated module, each tensor once."""
    seen: dict[int, Tensor] = {}
    param_ids: set[int] = set()
    unknown: list[str] = []

    def walk(m: Module, prefix: str) -> None:
        for name, tensor in m.params.items():
            seen.setdefault(id(tensor), tensor)
            param_ids.add(id(tensor))
            if tensor.numel is None:
                unknown.append(f"{prefix}{name}")
        for tensor in m.buffers.values():
            seen.setdefault(id(tensor), tensor)
        unknown.extend(f"{prefix}{name}" for name in m.unknown)
        if m.opaque:
            unknown.append(prefix.rstrip(".") or m.kind)
        for name, child in m.children.items():
            walk(child, f"{prefix}{name}.")

    walk(module, "")
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
    except (_GiveUp, _Return, RecursionError):
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
    init = _own_function(cls.node, "__init__")
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
    annotation = run._base(argument.annotation, cls.globals) if argument.annotation else None
    if isinstance(annotation, ClassRef) and not run.is_module_class(annotation):
        try:
            value = run.instantiate(annotation, [], {}, argument)
        except _OutOfBudget:
            raise
        except _GiveUp:
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
