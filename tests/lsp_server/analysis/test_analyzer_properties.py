"""Property-based: no text, however broken, makes the analysis raise or run long."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memlens.lsp_server.analysis import analyze
from tests.support.lsp_sources import corpus

BUDGET_S = 1.0  # generous: catches hangs and blow-ups, not speed regressions
CORPUS = corpus()


def _analyze_within_budget(text: str) -> None:
    started = time.perf_counter()
    analysis = analyze(text, version=7)
    assert time.perf_counter() - started < BUDGET_S
    assert analysis.version == 7
    lines = text.replace("\x00", " ").splitlines() or [""]
    for load in analysis.loads:
        assert 0 <= load.span.start.line < len(lines)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=2000))
def test_arbitrary_text(text: str) -> None:
    _analyze_within_budget(text)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(CORPUS), st.data())
def test_real_files_truncated_or_mutated(source: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(source)))
    start = data.draw(st.integers(0, len(source)))
    end = data.draw(st.integers(start, min(len(source), start + 200)))
    junk = data.draw(st.text(alphabet="()[]{}:,'\"\\\n\t #=.x0", max_size=30))
    _analyze_within_budget(source[:cut])
    _analyze_within_budget(source[:start] + junk + source[end:])
