"""The analytic formulas (memlens/profiler/architectures) agree with the real
meta-device model (memlens/profiler/meta.py) to the parameter and to the byte."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from typing import Any

import pytest

from memlens.errors import ConfigError, UnsupportedArchitectureError
from memlens.profiler.architectures import ArchitectureSpec, describe, supported_model_types
from memlens.profiler.meta import build_meta_model, exact_spec
from memlens.profiler.tensors import StorageDtype
from tests.support.tiny_configs import TINY_CONFIGS, tiny_config

GROUP_SIZES = (32, 64, 128)


def _known_configs() -> dict[str, dict[str, Any]]:
    folder = resources.files("memlens.profiler") / "known_configs"
    entries = [json.loads(f.read_text()) for f in folder.iterdir() if f.name.endswith(".json")]
    return {e["id"]: e["config"] for e in entries}


KNOWN = _known_configs()


def _by_block(spec: ArchitectureSpec) -> dict[str, tuple[object, ...]]:
    return {
        b.name: (
            b.kind,
            b.params,
            b.tied_to,
            tuple(
                sum(t.nbytes(d, g) for t in b.tensors) for d in StorageDtype for g in GROUP_SIZES
            ),
        )
        for b in spec.blocks
    }


def _assert_analytic_matches_exact(config: dict[str, Any]) -> None:
    analytic = describe(config)
    exact, _, _ = exact_spec(config)
    assert analytic.params == exact.params
    assert analytic.model_class == exact.model_class
    assert _by_block(analytic) == _by_block(exact)


@pytest.mark.parametrize("name", sorted(TINY_CONFIGS))
def test_tiny_config_matches_meta_model(name: str) -> None:
    _assert_analytic_matches_exact(tiny_config(name))


@pytest.mark.parametrize("model_id", sorted(KNOWN))
def test_shipped_config_matches_meta_model(model_id: str) -> None:
    _assert_analytic_matches_exact(KNOWN[model_id])


def test_exact_model_class_comes_from_the_config_itself() -> None:
    """The meta model is built from ``architectures``, not from the analytic family."""
    for model_id, config in KNOWN.items():
        assert type(build_meta_model(config)).__name__ == config["architectures"][0], model_id


@pytest.mark.parametrize(
    "head", ["LlamaForSequenceClassification", "LlamaModel", "LlamaForTokenClassification"]
)
def test_other_heads_fall_back_to_the_exact_model(head: str) -> None:
    config = {**tiny_config("llama"), "architectures": [head]}
    with pytest.raises(UnsupportedArchitectureError, match=head):
        describe(config)
    spec, kv_exact, notes = exact_spec(config)
    assert spec.model_class == head and not kv_exact
    assert any("no analytic formulas" in n for n in notes)


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"model_type": "no_such_type", "hidden_size": 8}, UnsupportedArchitectureError),
        ({"model_type": "bloom", "vocab_size": -5}, ConfigError),
        ({"model_type": "bloom", "hidden_size": "wide"}, ConfigError),
        ({"model_type": "bloom", "n_layer": 1_000_000}, ConfigError),
        ({"model_type": "llama", "hidden_size": 100, "num_attention_heads": 32}, ConfigError),
    ],
)
def test_exact_estimator_rejects_bad_configs_with_clear_errors(
    config: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        exact_spec(config)


def test_config_without_top_level_sizes_gets_parameters_only() -> None:
    spec, kv_exact, notes = exact_spec(
        {"model_type": "llava", "architectures": ["LlavaForConditionalGeneration"]}
    )
    assert spec.params > 0 and not kv_exact
    assert any("not estimated" in n for n in notes)


def test_families_cover_the_required_set() -> None:
    families = {describe(tiny_config(n)).family for n in TINY_CONFIGS}
    assert len(families) >= 12
    assert {
        "llama",
        "mistral",
        "mixtral",
        "qwen2",
        "gemma2",
        "phi3",
        "glm4",
        "gpt2",
        "bert",
        "opt",
        "falcon",
    } <= families
    assert set(supported_model_types()) >= families


@pytest.mark.parametrize(
    ("model_id", "params"),
    [
        ("meta-llama/Llama-2-7b-hf", 6_738_415_616),
        ("meta-llama/Meta-Llama-3-8B", 8_030_261_248),
        ("mistralai/Mixtral-8x7B-v0.1", 46_702_792_704),
        ("Qwen/Qwen2.5-0.5B", 494_032_768),
        ("openai-community/gpt2", 124_439_808),
        ("google-bert/bert-base-uncased", 109_514_298),
    ],
)
def test_published_parameter_counts(model_id: str, params: int) -> None:
    assert describe(KNOWN[model_id]).params == params


def test_tied_head_is_counted_once() -> None:
    tied = describe(tiny_config("qwen2-qkv-bias-tied"))
    untied = describe({**tiny_config("qwen2-qkv-bias-tied"), "tie_word_embeddings": False})
    head = next(b for b in tied.blocks if b.name == "lm_head")
    assert head.tied_to == "model.embed_tokens" and head.params == 0
    assert untied.params - tied.params == 320 * 64


def test_int4_falls_back_to_int8_for_ragged_input_features() -> None:
    spec = describe({**tiny_config("llama"), "intermediate_size": 100})  # 100 % 32 != 0
    down = next(
        t
        for b in spec.blocks
        if b.name == "model.layers.0"
        for t in b.tensors
        if t.name == "mlp.down_proj.weight"
    )
    assert down.nbytes(StorageDtype.INT4, 32) == down.nbytes(StorageDtype.INT8, 32)


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"hidden_size": 64}, ConfigError),  # no model_type
        ({"model_type": "llama", "hidden_size": 64}, ConfigError),  # missing fields
        ({**TINY_CONFIGS["llama"], "num_hidden_layers": -2}, ConfigError),
        ({**TINY_CONFIGS["llama"], "hidden_size": "wide"}, ConfigError),
        ({**TINY_CONFIGS["llama"], "hidden_size": 102}, ConfigError),  # 102 % 4 heads ≠ 0
        ({**TINY_CONFIGS["llama"], "num_key_value_heads": 3}, ConfigError),
        ({**TINY_CONFIGS["llama"], "num_hidden_layers": 10**6}, ConfigError),
        ({**TINY_CONFIGS["gemma2-alternating"], "layer_types": ["full_attention"]}, ConfigError),
        ({"model_type": "mamba", "hidden_size": 64}, UnsupportedArchitectureError),
    ],
)
def test_bad_configs_raise_clear_errors(config: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        describe(config, source="my/config.json")
    assert "my/config.json" in str(info.value) or error is UnsupportedArchitectureError


def test_analytic_modules_import_without_torch() -> None:
    code = (
        "import sys\n"
        "import memlens\n"
        "from memlens.profiler import architectures, configs, estimate\n"
        "from memlens.profiler.estimate import analytic_estimate\n"
        "from memlens.profiler.configs import resolve_config\n"
        "analytic_estimate(resolve_config('gpt2').config, 'gpt2')\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'transformers' not in sys.modules, 'transformers was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_mixture_of_experts_reports_active_parameters() -> None:
    [note] = describe(KNOWN["mistralai/Mixtral-8x7B-v0.1"]).notes
    assert "12.9B of 46.7B parameters active per token (2 of 8 experts)" in note
    assert describe(KNOWN["meta-llama/Llama-2-7b-hf"]).notes == ()


def _automodel_spec(config: dict[str, Any]) -> ArchitectureSpec:
    """The exact spec of the class ``AutoModel`` builds for the config's ``model_type``."""
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    bare = MODEL_MAPPING_NAMES[config["model_type"]]
    spec, _, _ = exact_spec({**config, "architectures": [bare]})
    return spec


@pytest.mark.parametrize(
    "config",
    [*(tiny_config(n) for n in sorted(TINY_CONFIGS)), *(KNOWN[i] for i in sorted(KNOWN))],
    ids=[*sorted(TINY_CONFIGS), *sorted(KNOWN)],
)
def test_bare_model_is_what_automodel_builds(config: dict[str, Any]) -> None:
    """``AutoModel`` builds the bare model whatever head ``architectures`` names
    (bert-base-uncased names BertForMaskedLM): no LM head, blocks named as in it."""
    bare = describe(config, bare=True)
    exact = _automodel_spec(config)
    assert (bare.params, bare.model_class) == (exact.params, exact.model_class)
    # the exact spec tells a decoder layer from an encoder layer by the class it knows
    # (a bare model's class is not one): compare everything but the kinds
    assert {n: b[1:] for n, b in _by_block(bare).items()} == {
        n: b[1:] for n, b in _by_block(exact).items()
    }
