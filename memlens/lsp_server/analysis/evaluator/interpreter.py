"""The evaluator's state and its one entry for every operation: a step budget shared by
everything it runs, the depth of nested calls, the workspace modules it followed, the
parameters ``nn.Parameter`` made, and what each layer constructor it ran built. Each kind
of work lives in its own module (expressions, statements, calls, classes, ``torch``);
they reach each other through this object."""

from __future__ import annotations

import ast
from typing import Any

from memlens.lsp_server.analysis.evaluator import calls, classes, statements
from memlens.lsp_server.analysis.evaluator.expressions import EXPRESSIONS, binary
from memlens.lsp_server.analysis.evaluator.module_names import Globals
from memlens.lsp_server.analysis.evaluator.values import (
    STEP_BUDGET,
    UNKNOWN,
    ClassRef,
    FunctionRef,
    Instance,
    Module,
    OutOfBudget,
    Tensor,
    plain,
)
from memlens.lsp_server.analysis.workspace_modules import ModuleLoader

_NOT_FOLLOWED = frozenset({"torch", "transformers", "math"})


class Evaluator:
    """One evaluation of one parsed file (and the workspace modules it imports)."""

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
        self._bases: dict[int, list[Any]] = {}
        self._module_classes: dict[int, bool] = {}

    def close(self) -> None:
        """Drop what refers back to this evaluation (module values, followed modules), so
        that it is freed without the garbage collector."""
        for names in (self.globals, *self.modules.values()):
            if names is not None:
                names.close()
        self.modules.clear()
        self.parameters.clear()
        self._bases.clear()

    def module_globals(self, spec: str) -> Globals | None:
        """The names of a workspace module a ``from … import`` names (``.layers``)."""
        if self.loader is None or spec.split(".")[0] in _NOT_FOLLOWED:
            return None
        if spec not in self.modules:
            self.modules[spec] = None  # an import cycle stops here
            tree = self.loader(spec)
            self.modules[spec] = Globals(tree, self) if tree is not None else None
        return self.modules[spec]

    def step(self) -> None:
        """Spend one step of the budget."""
        self.steps -= 1
        if self.steps < 0:
            raise OutOfBudget("budget")

    # -- expressions and statements -------------------------------------------------
    def expr(self, node: ast.expr | None, env: dict[str, Any], g: Globals) -> Any:
        """The value of ``node`` with local names ``env`` and module names ``g``."""
        if node is None:
            return None
        self.step()
        handler = EXPRESSIONS.get(type(node))
        return handler(self, node, env, g) if handler else UNKNOWN

    def binary(self, op: ast.operator, left: Any, right: Any) -> Any:
        """``left op right``."""
        return binary(op, left, right)

    def block(self, body: list[ast.stmt], env: dict[str, Any], g: Globals) -> None:
        """Run statements."""
        statements.block(self, body, env, g)

    def assign(self, target: ast.expr, value: Any, env: dict[str, Any], g: Globals) -> None:
        """Bind ``value`` to an assignment target."""
        statements.assign(self, target, value, env, g)

    def truth(self, value: Any) -> bool | None:
        """``bool(value)`` when the evaluator knows it."""
        if plain(value) or isinstance(value, Instance | Module | list | dict | tuple):
            try:
                return bool(value)
            except TypeError:
                return None
        return None

    def iterate(self, value: Any) -> list[Any] | None:
        """The items of a value it can iterate (a range within the budget), else None."""
        if isinstance(value, range):
            if abs(value.stop - value.start) // max(abs(value.step), 1) > self.steps:
                raise OutOfBudget("budget")
            return list(value)
        if isinstance(value, list | tuple | str | dict):
            return list(value)
        if isinstance(value, Module) and value.kind in ("ModuleList", "Sequential"):
            return list(value.children.values())
        return None

    # -- calls ------------------------------------------------------------------------
    def call(self, fn: Any, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        """``fn(*args, **kwargs)`` at the syntax ``node``."""
        return calls.call(self, fn, args, kwargs, node)

    def run_function(
        self,
        fn: FunctionRef,
        args: list[Any],
        kwargs: dict[str, Any],
        env: dict[str, Any] | None = None,
    ) -> Any:
        """A function of the parsed files run on its arguments."""
        return calls.run_function(self, fn, args, kwargs, env)

    def unknown_call(self, fn: Any, node: ast.Call) -> Any:
        """What a call that cannot be run gives."""
        return calls.unknown_call(self, fn, node)

    # -- classes and attributes ---------------------------------------------------------
    def bases(self, cls: ClassRef) -> list[Any]:
        """The values of a class's bases (evaluated once per evaluation)."""
        found = self._bases.get(id(cls.node))
        if found is None:
            found = self._bases[id(cls.node)] = classes.bases(self, cls)
        return found

    def is_module_class(self, cls: ClassRef) -> bool:
        """Whether ``cls`` is an ``nn.Module`` class (decided once per evaluation)."""
        found = self._module_classes.get(id(cls.node))
        if found is None:
            found = self._module_classes[id(cls.node)] = classes.is_module_class(self, cls)
        return found

    def instantiate(self, cls: ClassRef, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """``cls(*args, **kwargs)``."""
        return classes.instantiate(self, cls, args, kwargs)

    def construct(
        self, cls: ClassRef, module: Module, args: list[Any], kwargs: dict[str, Any]
    ) -> None:
        """Run ``cls.__init__`` on ``module``."""
        classes.construct(self, cls, module, args, kwargs)

    def attribute(self, obj: Any, name: str) -> Any:
        """``obj.name``."""
        return classes.get_attribute(self, obj, name)

    def set_attribute(self, obj: Any, name: str, value: Any) -> None:
        """``obj.name = value``."""
        classes.set_attribute(self, obj, name, value)
