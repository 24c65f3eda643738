"""Load estimates: ``AutoModel`` is sized as the bare model it builds (no task head),
``AutoModelFor…`` with its head, against transformers' own count on the meta device."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import transformers

from memlens.lsp_server.analysis import Estimator, analyze
from memlens.profiler.configs import resolve_config
from tests.support.meta_truth import torch_size

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
