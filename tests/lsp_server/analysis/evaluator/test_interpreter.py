"""The evaluator's shared state (memlens/lsp_server/analysis/evaluator/interpreter.py):
closing an evaluation leaves nothing for the garbage collector, which the server relies
on when it runs analyses with the collector paused (memlens/lsp_server/gc_policy.py)."""

from __future__ import annotations

import ast
import gc

import pytest

from memlens.lsp_server.analysis import analyze
from memlens.lsp_server.analysis.evaluator import Evaluator, class_size
from tests.support.model_sources import DATACLASS_GPT, NAMED_CONFIGS


@pytest.mark.parametrize("source", [DATACLASS_GPT, NAMED_CONFIGS], ids=["dataclass", "named"])
def test_an_analysis_leaves_no_reference_cycles(source: str) -> None:
    analyze(source)  # warm: module-level caches of the interpreter fill once
    gc.collect()
    gc.disable()
    try:
        analysis = analyze(source)
        assert any(cls.size for cls in analysis.classes)  # the evaluator did run
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_a_closed_evaluation_knows_no_values() -> None:
    run = Evaluator(ast.parse(DATACLASS_GPT))
    assert class_size(run, "GPT") is not None
    run.close()
    assert run.globals.values == {}
    assert run.globals.run is None
    assert run.modules == {}
