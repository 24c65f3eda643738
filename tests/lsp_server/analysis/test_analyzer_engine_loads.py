"""memlens's ``load_model(ID, dtype, weights=...)`` read as a model load."""

from __future__ import annotations

from memlens.lsp_server.analysis import ModelLoad, analyze
from memlens.lsp_server.analysis.estimates import Estimator

ID = "meta-llama/Llama-2-7b-hf"


def _load(text: str) -> ModelLoad:
    [load] = analyze(text).loads
    return load


def test_keywords_positionals_chained_model_and_aliases() -> None:
    cases = {
        # keywords, imported names, .model chained: the target is the transformers model
        (
            "import torch\nfrom memlens.engine import Int4WeightConfig, load_model\n"
            f'model = load_model(path="{ID}", dtype=torch.float16, '
            "weights=Int4WeightConfig(group_size=64)).model\n"
        ): ("fp16", "int4", 64, "model"),
        # positionals through the module, the INT4 default group
        (
            "import torch\nimport memlens.engine as me\n"
            f'loaded = me.load_model("{ID}", torch.bfloat16, me.Int4WeightConfig())\n'
        ): ("bf16", "int4", None, "loaded"),
        # an aliased import, a config assigned once, no dtype (load_model's bf16)
        (
            "from memlens.engine import load_model as lm\n"
            "from memlens.engine.weights.config import Int8WeightConfig\n"
            f"CFG = Int8WeightConfig()\nm = lm('{ID}', weights=CFG).model\n"
        ): ("bf16", "int8", None, "m"),
        # the full module path
        (
            "import torch, memlens\n"
            f'm = memlens.engine.loading.load_model("{ID}", torch.bfloat16)\n'
        ): ("bf16", None, None, "m"),
    }
    for text, (dtype, quantization, group, target) in cases.items():
        load = _load(text)
        assert load.model_ref == ID, text
        assert (load.dtype, load.quantization, load.group_size, load.target) == (
            dtype,
            quantization,
            group,
            target,
        ), text
        assert not load.only_id_and_dtype  # the engine quick fixes do not rewrite it again


def test_weights_the_analysis_cannot_read_guess_no_quantization() -> None:
    unreadable = (
        "weights",  # a parameter
        "Int4WeightConfig(group_size=G)",  # a group that is not static
        "Int4WeightConfig(skip=('lm_head',))",  # not every Linear compressed
        "Int4WeightConfig(('lm_head',))",  # a positional
        "Int8WeightConfig(skip=SKIP)",
        "AutoWeightConfig(max_error=0.02)",  # decided by a calibration run
        "make_config()",
        "None",
    )
    for weights in unreadable:
        text = (
            "from memlens.engine import AutoWeightConfig, Int4WeightConfig, "
            "Int8WeightConfig, load_model\n"
            f"def f(weights, G, SKIP):\n    return load_model('{ID}', weights={weights})\n"
        )
        load = _load(text)
        assert (load.quantization, load.group_size) == (None, None), weights
        assert load.model_ref == ID and load.dtype == "bf16"


def test_a_load_model_of_another_module_is_not_a_load() -> None:
    assert analyze("from mylib import load_model\nm = load_model('x')\n").loads == ()


def test_only_id_and_dtype_marks_loads_the_engine_fixes_can_rewrite() -> None:
    calls = {
        f'AutoModelForCausalLM.from_pretrained("{ID}")': True,
        f'AutoModelForCausalLM.from_pretrained("{ID}", torch_dtype=torch.float32)': True,
        f'AutoModelForCausalLM.from_pretrained(pretrained_model_name_or_path="{ID}")': True,
        f'AutoModelForCausalLM.from_pretrained("{ID}", device_map="auto")': False,
        f'AutoModelForCausalLM.from_pretrained("{ID}", trust_remote_code=True)': False,
        f'AutoModelForCausalLM.from_pretrained("{ID}", quantization_config=q)': False,
        f'AutoModelForCausalLM.from_pretrained("{ID}", **kwargs)': False,
        f'AutoModelForCausalLM.from_pretrained("{ID}", None)': False,
        f'AutoModelForCausalLM.from_pretrained("{ID}").half()': False,
        f'AutoModelForCausalLM.from_config(AutoConfig.from_pretrained("{ID}"))': False,
        f'pipeline("text-generation", model="{ID}")': False,
    }
    for call, expected in calls.items():
        text = f"import torch\nfrom transformers import pipeline\nm = {call}\n"
        loads = [ld for ld in analyze(text).loads if "Config" not in ld.loader]
        assert [ld.only_id_and_dtype for ld in loads] == [expected], call


def test_the_first_memlens_engine_import_is_found() -> None:
    text = (
        "import torch\nfrom memlens import engine\n"
        "from memlens.engine import (\n    compress_ as c,\n    load_model,\n)\n"
        "from memlens.engine import Int8WeightConfig\n"
    )
    span, names = analyze(text).engine_import or (None, ())
    assert names == ("compress_ as c", "load_model")
    assert span is not None and (span.start.line, span.end.line) == (2, 5)
    assert analyze("from .engine import load_model\n").engine_import is None
    assert analyze("from memlens.engine import *\n").engine_import is None  # cannot take more


def test_the_int4_group_as_written_is_estimated_and_a_bad_one_says_why() -> None:
    text = "from memlens.engine import Int4WeightConfig, load_model\n"
    estimator = Estimator()
    sizes = {}
    for group in (32, 128):
        load = _load(text + f"m = load_model('{ID}', weights=Int4WeightConfig(group_size={group}))")
        assert load.group_size == group
        estimate = estimator.estimate_load(load, None).estimate
        assert estimate is not None and (estimate.dtype, estimate.group_size) == ("int4", group)
        sizes[group] = estimate.weight_bytes
    assert sizes[32] > sizes[128]  # more scales and zero points
    for bad in (100, 0):
        load = _load(text + f"m = load_model('{ID}', weights=Int4WeightConfig(group_size={bad}))")
        result = estimator.estimate_load(load, None)
        assert result.estimate is None
        assert f"INT4 group size {bad} is not supported" in (result.error or "")
