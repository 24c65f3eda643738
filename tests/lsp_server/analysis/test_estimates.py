"""The estimator (memlens/lsp_server/analysis/estimates.py): ``AutoModel`` is sized as the
bare model it builds (no task head), ``AutoModelFor…`` with its head, against transformers'
own count on the meta device; its caches are bounded in entries, so a long session that
meets many models does not grow them without bound."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import transformers

from memlens.lsp_server.analysis import Estimator, Position, Span, analyze, estimates
from memlens.lsp_server.analysis.findings import ModelLoad
from memlens.profiler.configs import resolve_config
from tests.support.meta_truth import torch_size

_SPAN = Span(Position(0, 0), Position(0, 1))

MODELS = ("bert-base-uncased", "gpt2", "meta-llama/Llama-2-7b-hf", "Qwen/Qwen2.5-0.5B")
HEADS = {"bert": "AutoModelForMaskedLM"}
"""The head class each model type is loaded with (else ``AutoModelForCausalLM``)."""


def _meta_params(auto: type[Any], config: dict[str, Any]) -> int:
    fields = {k: v for k, v in config.items() if k != "model_type"}
    hf_config = transformers.AutoConfig.for_model(config["model_type"], **fields)
    with torch.device("meta"):
        model = auto.from_config(hf_config)
    return torch_size(model)[0]


def _estimated_params(text: str) -> int:
    [load] = analyze(text).loads
    estimate = Estimator().estimate_load(load, None).estimate
    assert estimate is not None, text
    return estimate.params


@pytest.mark.parametrize("model_id", MODELS)
def test_automodel_counts_the_bare_model_and_a_head_class_its_head(model_id: str) -> None:
    config = resolve_config(model_id, allow_network=False).config
    head = HEADS.get(config["model_type"], "AutoModelForCausalLM")
    for auto, text in (
        (transformers.AutoModel, f'm = AutoModel.from_pretrained("{model_id}")'),
        (
            transformers.AutoModel,
            f'm = AutoModel.from_config(AutoConfig.from_pretrained("{model_id}"))',
        ),
        (getattr(transformers, head), f'm = {head}.from_pretrained("{model_id}")'),
    ):
        assert _estimated_params(text) == _meta_params(auto, config), text


def test_bert_base_uncased_is_sized_without_the_masked_lm_head() -> None:
    # its config names BertForMaskedLM; AutoModel builds BertModel (with the pooler)
    bare = _estimated_params('m = AutoModel.from_pretrained("bert-base-uncased")')
    named = _estimated_params('m = BertModel.from_pretrained("bert-base-uncased")')
    masked = _estimated_params('m = BertForMaskedLM.from_pretrained("bert-base-uncased")')
    assert bare == named == 109_482_240 and masked == 109_514_298


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
