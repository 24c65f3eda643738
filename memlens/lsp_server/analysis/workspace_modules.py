"""The workspace's own Python modules, for the evaluator to follow ``from .layers import
Block`` or ``from mypkg.layers import Block``: found under the importing file's folder or
the workspace root, never elsewhere (site-packages is not followed), read and parsed
without importing anything."""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable
from pathlib import Path
from stat import S_ISREG

_MAX_BYTES = 2_000_000
"""Larger files are not followed (a generated module, data)."""

ModuleLoader = Callable[[str], ast.Module | None]
"""Import spec (``.layers``, ``mypkg.layers``) → the module's parsed tree, or None."""


def workspace_loader(document: Path, root: Path | None) -> ModuleLoader:
    """A loader for imports of ``document``, inside ``root`` (or the document's folder
    when there is no workspace root)."""
    bounds = (root or document.parent).resolve()

    def load(spec: str) -> ast.Module | None:
        module = spec.lstrip(".")
        level = len(spec) - len(module)
        parts = [p for p in module.split(".") if p]
        if level:
            base = document.parent
            for _ in range(level - 1):
                base = base.parent
            bases = [base]
        else:
            bases = [document.parent, bounds]
        for base in bases:
            for candidate in (
                base.joinpath(*parts).with_suffix(".py"),
                base.joinpath(*parts, "__init__.py"),
            ):
                tree = (
                    _parse(candidate, bounds) if parts or candidate.name == "__init__.py" else None
                )
                if tree is not None:
                    return tree
        return None

    return load


def _parse(path: Path, bounds: Path) -> ast.Module | None:
    try:
        stat = path.stat()  # most candidates do not exist: one system call says so
        if not S_ISREG(stat.st_mode) or stat.st_size > _MAX_BYTES:
            return None
        resolved = path.resolve()
        if not resolved.is_relative_to(bounds):
            return None
        return _parsed(resolved, stat.st_mtime_ns, stat.st_size)
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError, RecursionError):
        return None


@functools.lru_cache(maxsize=64)
def _parsed(path: Path, mtime_ns: int, size: int) -> ast.Module:
    """The tree of one file as it is on disk: every version of the document being typed
    reuses it until the file itself changes (its modification time or size). Nobody
    mutates these trees."""
    return ast.parse(path.read_text(encoding="utf-8"))
