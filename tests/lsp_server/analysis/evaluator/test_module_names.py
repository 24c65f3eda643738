"""Module-level names (memlens/lsp_server/analysis/evaluator/module_names.py): what a
tree binds is read once while the tree lives; what the names are belongs to one
evaluation."""

from __future__ import annotations

import ast

from memlens.lsp_server.analysis.evaluator import ClassRef, Evaluator
from memlens.lsp_server.analysis.evaluator.module_names import module_names

SOURCE = """\
import torch.nn as nn
from dataclasses import dataclass
WIDTH = 64
WIDTH_TWICE = 1
WIDTH_TWICE = 2
a, b = 1, 2

class Block(nn.Module):
    pass
"""


def test_a_trees_bindings_are_read_once() -> None:
    tree = ast.parse(SOURCE)
    names = module_names(tree)
    assert module_names(tree) is names
    assert isinstance(names.nodes["Block"], ast.ClassDef)
    assert names.aliases["nn"] == "torch.nn"
    assert "dataclass" in names.from_imports


def test_names_bound_more_than_once_or_by_unpacking_are_unknown() -> None:
    run = Evaluator(ast.parse(SOURCE))
    assert run.globals.lookup("WIDTH") == 64
    for name in ("WIDTH_TWICE", "a", "b"):
        assert repr(run.globals.lookup(name)) == "UNKNOWN"
    assert isinstance(run.globals.lookup("Block"), ClassRef)
    assert run.is_module_class(run.globals.lookup("Block"))


def test_two_evaluations_of_one_tree_share_bindings_not_values() -> None:
    tree = ast.parse(SOURCE)
    first, second = Evaluator(tree), Evaluator(tree)
    assert first.globals.names is second.globals.names
    assert first.globals.lookup("Block") is not second.globals.lookup("Block")
