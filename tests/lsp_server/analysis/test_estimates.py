"""The estimator's caches (memlens/lsp_server/analysis/estimates.py): bounded in entries,
so a long session that meets many models does not grow them without bound."""

from __future__ import annotations

import pytest

from memlens.lsp_server.analysis import Position, Span, estimates
from memlens.lsp_server.analysis.estimates import Estimator
from memlens.lsp_server.analysis.findings import ModelLoad

_SPAN = Span(Position(0, 0), Position(0, 1))


def test_estimates_and_resolved_references_stay_within_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(estimates, "MAX_CACHED", 8)
    estimator = Estimator()
    for i in range(30):
        # a reference nobody can resolve offline, and a config only this load has
        missing = ModelLoad(_SPAN, "AutoModel.from_pretrained", f"no-such-org/model-{i}", None)
        assert estimator.estimate_load(missing, None).unresolved
        config = {"model_type": "llama", "hidden_size": 64 * (i + 1), "num_hidden_layers": 2}
        built = ModelLoad(_SPAN, "AutoModel.from_config", None, None, config=config)
        estimator.estimate_load(built, None)
    assert len(estimator._resolved) == 8
    assert len(estimator._estimates) == 8


def test_a_cached_estimate_is_the_same_answer() -> None:
    estimator = Estimator()
    load = ModelLoad(
        _SPAN, "AutoModel.from_config", None, None, config={"model_type": "llama", "vocab_size": 5}
    )
    first = estimator.estimate_load(load, None)
    assert estimator.estimate_load(load, None) is first
