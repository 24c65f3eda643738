"""No import cycle among memlens's modules.

Every ``import`` that can run counts, also one inside a function (hiding a cycle there
only delays it); imports under ``if TYPE_CHECKING:`` never run and do not count. The
implicit import of a parent package's ``__init__`` does not count either: it is what
Python does for every dotted import, not a dependency the code chose.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import memlens

PACKAGE_ROOT = Path(memlens.__file__).parent


def module_files() -> dict[str, Path]:
    """Every memlens module by its dotted name."""
    modules: dict[str, Path] = {}
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _running_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements under ``node``, skipping ``if TYPE_CHECKING:`` bodies."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _running_imports(ast.Module(body=[other], type_ignores=[]))
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        yield from _running_imports(child)


def _imported(statement: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> set[str]:
    """Dotted names a statement imports (a module, or a name in a module)."""
    if isinstance(statement, ast.Import):
        return {alias.name for alias in statement.names}
    base = statement.module or ""
    if statement.level:
        anchor = module.split(".")
        if not is_package:
            anchor = anchor[:-1]
        anchor = anchor[: len(anchor) - (statement.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    return {base} | {f"{base}.{alias.name}" for alias in statement.names}


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module → the memlens modules its running imports name."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets: set[str] = set()
        for statement in _running_imports(tree):
            for target in _imported(statement, name, path.name == "__init__.py"):
                if target in modules and target != name:
                    targets.add(target)
        # ``from pkg import sub`` names both pkg and pkg.sub: keep only the submodule then
        graph[name] = {t for t in targets if not any(o.startswith(t + ".") for o in targets)}
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components with more than one module (each one an import cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_graph_sees_real_imports() -> None:
    """The walk finds imports of every form (absolute, relative, inside functions) and
    skips TYPE_CHECKING ones, so an empty cycle list below means something."""
    tree = ast.parse(
        "import memlens.units\n"
        "from . import errors\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from memlens.cli import main\n"
        "def f():\n    from memlens.profiler import tensors\n"
    )
    found = set()
    for statement in _running_imports(tree):
        found |= _imported(statement, "memlens.x", is_package=False)
    assert {"memlens.units", "memlens.errors", "memlens.profiler.tensors"} <= found
    assert "memlens.cli.main" not in found
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_among_memlens_modules() -> None:
    graph = import_graph(module_files())
    assert len(graph) > 100
    assert strongly_connected(graph) == []
