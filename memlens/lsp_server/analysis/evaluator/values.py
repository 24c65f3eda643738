"""What the evaluator computes with: the values it knows (tensors of a size, modules,
config objects, classes and functions of the parsed files, names from outside them), the
one ``UNKNOWN`` for everything else, and how a run stops (give up, fail, out of budget)."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memlens.lsp_server.analysis.evaluator.module_names import Globals

STEP_BUDGET = 200_000
"""Steps (expressions and statements) one evaluation may take before it gives up."""
MAX_DEPTH = 16
"""Nested function calls one evaluation may make."""
MAX_INT = 1 << 62
"""Larger numbers are unknown (nobody's layer is that wide; it bounds the arithmetic)."""
MAX_ITEMS = 100_000
"""Longer lists, strings and tuples are unknown."""
UNKNOWN: Any = type("Unknown", (), {"__repr__": lambda self: "UNKNOWN", "__slots__": ()})()


class GiveUp(Exception):
    """Raised inside a run when something cannot be modelled; the run's value is unknown."""


class Fails(GiveUp):
    """The real code would raise here (a failing ``assert``, a ``raise`` reached): no figure."""


class OutOfBudget(GiveUp):
    """The evaluation used its step budget (or nested calls too deeply): it ends."""


class Return(Exception):
    """A ``return`` statement unwinding to its function's call."""

    def __init__(self, value: Any) -> None:
        self.value = value


@dataclass(eq=False, slots=True)
class Tensor:
    """A tensor of known element count (None when its shape is unknown)."""

    numel: int | None
    dtype: str = "fp32"


@dataclass(eq=False, slots=True)
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


@dataclass(eq=False, slots=True)
class Instance:
    """An object of a plain (config) class of the file."""

    cls: ClassRef
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False, slots=True)
class ClassRef:
    """A class statement of a parsed file, with the module names it sees."""

    node: ast.ClassDef
    globals: Globals


@dataclass(eq=False, slots=True)
class FunctionRef:
    """A function statement of a parsed file, maybe bound to its first argument."""

    node: ast.FunctionDef | ast.AsyncFunctionDef
    globals: Globals
    bound: Any = None
    """The first argument already bound (``self`` or ``cls``), or None."""
    owner: ClassRef | None = None
    """The class whose body defines it (what ``super()`` starts from)."""


@dataclass(frozen=True, slots=True)
class External:
    """A name from outside the file (``torch.nn.Linear``, ``math.ceil``)."""

    name: str


@dataclass(eq=False, slots=True)
class Method:
    """A method of a value the evaluator knows (a module, tensor, dict, list or str),
    bound to it."""

    obj: Any
    name: str


@dataclass(eq=False, slots=True)
class Super:
    """``super()`` in a method of ``cls`` called on ``owner``."""

    owner: Any
    cls: ClassRef | None


def is_int(value: Any) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def plain(value: Any) -> bool:
    """None, a number, a string, a bool or a tuple: compared, converted and used as a dict
    key as Python would."""
    return value is None or isinstance(value, int | float | str | bool | tuple)


def full_name(name: str) -> str:
    """``nn.Linear`` → ``torch.nn.Linear`` (``nn`` unimported is taken as torch's)."""
    return "torch." + name if name.startswith("nn.") else name


def class_like(name: str) -> bool:
    """A name that looks like a class that may hold parameters."""
    return name[:1].isupper() and not name.endswith(("Config", "Error", "Exception", "Warning"))
