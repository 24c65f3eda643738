"""The static analysis (memlens/lsp_server/analysis/analyzer.py) on realistic snippets."""

from __future__ import annotations

import sys

from memlens.lsp_server.analysis import Position, analyze, class_totals
from tests.support.lsp_sources import HF_LOADING, NANOGPT


def test_hf_loading_code() -> None:
    analysis = analyze(HF_LOADING)
    loads = {ld.target: ld for ld in analysis.loads}
    assert set(loads) == {"model", "quantized", "eight", "remote", "pipe", "local"}
    assert loads["model"].model_ref == "mistralai/Mistral-7B-v0.1"
    assert (loads["model"].dtype, loads["model"].dtype_keyword) == ("bf16", "torch_dtype")
    assert loads["model"].device_map == "auto"
    assert loads["quantized"].quantization == "int4"
    assert loads["eight"].quantization == "int8"
    assert loads["remote"].trust_remote_code
    assert (loads["pipe"].model_ref, loads["pipe"].dtype) == ("Qwen/Qwen2.5-0.5B", "auto")
    assert loads["local"].model_ref is None  # a function parameter: unknown, not guessed
    [generate] = analysis.generates
    assert (generate.target, generate.max_new_tokens) == ("model", 256)
    [change] = analysis.dtype_changes
    assert (change.target, change.dtype) == ("model", "fp16")


def test_nanogpt_layers_multiplicities_and_totals() -> None:
    analysis = analyze(NANOGPT)
    classes = {c.name: c for c in analysis.classes}
    assert set(classes) == {"CausalSelfAttention", "MLP", "Block", "GPT"}
    c_attn = classes["CausalSelfAttention"].layers[0]
    assert (c_attn.layer, c_attn.params, c_attn.count) == ("Linear", 768 * 2304 + 2304, 1)
    assert [layer.params for layer in classes["MLP"].layers] == [
        768 * 3072 + 3072,
        3072 * 768 + 768,
    ]
    gpt = classes["GPT"]
    assert [(s.module, s.count) for s in gpt.submodules] == [("Block", 12)]
    lm_head = gpt.layers[-1]
    assert lm_head.params is None  # config.vocab_size is not static
    totals = class_totals(analysis.classes)
    block = 2 * 2 * 768 + (768 * 2304 + 2304) + (768 * 768 + 768) + 2 * 768 * 3072 + 3072 + 768
    assert totals["Block"].params == block and totals["Block"].complete
    assert totals["GPT"].params == 50304 * 768 + 1024 * 768 + 12 * block + 2 * 768
    assert not totals["GPT"].complete


def test_half_typed_code_keeps_the_rest() -> None:
    text = NANOGPT.replace(
        "        self.c_fc = nn.Linear(N_EMBD, hidden)",
        "        self.c_fc = nn.Linear(N_EMBD, hidden",
    )
    text += "\nmodel = AutoModelForCausalLM.from_pretrained('gpt2'\n"
    analysis = analyze(text)
    names = {c.name for c in analysis.classes}
    assert {"CausalSelfAttention", "Block", "GPT"} <= names
    assert len(analysis.syntax_problems) >= 1
    assert any(p.span.start.line <= 18 <= p.span.end.line for p in analysis.syntax_problems)


def test_unicode_columns_are_code_points() -> None:
    text = 'x = "ünïcødé"; m = AutoModel.from_pretrained("gpt2")\n'
    [load] = analyze(text).loads
    assert load.span.start == Position(0, text.index("AutoModel"))


def test_constants_assigned_twice_are_unknown() -> None:
    text = (
        "import torch.nn as nn\nD = 64\nif flag:\n    D = 128\n"
        "class M(nn.Module):\n    def __init__(self):\n        self.l = nn.Linear(D, D)\n"
    )
    [cls] = analyze(text).classes
    assert cls.layers[0].params is None


def test_layer_formulas() -> None:
    text = """import torch.nn as nn
class M(nn.Module):
    def __init__(self):
        self.a = nn.Conv2d(3, 64, kernel_size=(3, 5), groups=1, bias=False)
        self.b = nn.Conv1d(64, 64, 3, groups=4)
        self.c = nn.RMSNorm([16, 8])
        self.d = nn.MultiheadAttention(512, 8)
        self.e = nn.LayerNorm(256, elementwise_affine=False)
        self.f = nn.Embedding(num_embeddings=10, embedding_dim=4, dtype=torch.bfloat16)
        for _ in range(3):
            self.g = nn.Linear(2, 2)  # reassigned: one instance survives
        for _ in range(4):
            self.blocks.append(nn.Linear(3, 3))
        while more():
            self.extra.append(nn.Linear(5, 5))
        self.h = nn.ModuleList(nn.Linear(4, 4) for i in range(2) for j in range(5))
"""
    [cls] = analyze(text).classes
    found = [(layer.layer, layer.params, layer.count, layer.dtype) for layer in cls.layers]
    assert found == [
        ("Conv2d", 64 * 3 * 15, 1, "fp32"),
        ("Conv1d", 64 * 16 * 3 + 64, 1, "fp32"),
        ("RMSNorm", 128, 1, "fp32"),
        ("MultiheadAttention", 4 * 512 * 512 + 4 * 512, 1, "fp32"),
        ("LayerNorm", 0, 1, "fp32"),
        ("Embedding", 40, 1, "bf16"),
        ("Linear", 6, 1, "fp32"),
        ("Linear", 12, 4, "fp32"),
        ("Linear", 30, None, "fp32"),
        ("Linear", 20, 10, "fp32"),
    ]


def test_analysis_imports_no_torch() -> None:
    import subprocess

    code = (
        "import sys\nfrom memlens.lsp_server.analysis import analyze\n"
        "from memlens.lsp_server import server, features\n"
        f"analyze({NANOGPT!r})\nassert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_broken_decorated_function_blanks_only_itself() -> None:
    text = (
        "from functools import cache\n@cache\ndef broken(:\n    pass\n\n"
        "def fine():\n    return AutoModel.from_pretrained('gpt2')\n"
    )
    analysis = analyze(text)
    assert [ld.model_ref for ld in analysis.loads] == ["gpt2"]
    [problem] = analysis.syntax_problems
    assert (problem.span.start.line, problem.span.end.line) == (1, 3)


def test_names_bound_other_ways_are_unknown() -> None:
    text = """import torch
import torch.nn as nn
N = 64
DTYPE = torch.float16
D = 8
D2 = 8
D2 *= 2
class M(nn.Module):
    D = 128
    def __init__(self, N, width=N):
        super().__init__()
        self.a = nn.Linear(N, 4)
        self.b = nn.Linear(D, D)
        self.c = nn.Linear(D2, 1)
        self.d = nn.ModuleList([nn.Linear(D, D) for D in (1, 2)])
def load(DTYPE):
    return AutoModel.from_pretrained("gpt2", dtype=DTYPE)
"""
    analysis = analyze(text)
    [cls] = analysis.classes
    params = [layer.params for layer in cls.layers]
    assert params == [None, 8 * 8 + 8, None, None]  # N is a parameter; D is the module's
    [load] = analysis.loads
    assert load.dtype == "?"  # the function's parameter, not the module's constant


def test_uncountable_parts_make_the_total_a_floor() -> None:
    text = """import torch
import torch.nn as nn
from transformers.models.llama.modeling_llama import LlamaDecoderLayer
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(4096, 4096))
        self.rnn = nn.GRU(8, 8)
        self.act = nn.GELU()
        self.layers = nn.ModuleList([LlamaDecoderLayer(cfg, i) for i in range(32)])
        self.head = nn.Linear(8, 8)
    def forward(self, x):
        return nn.Linear(8, 8)(x)
"""
    [cls] = analyze(text).classes
    assert cls.unknown_parts == 3  # Parameter, GRU, LlamaDecoderLayer; GELU holds nothing
    assert [layer.span.start.line for layer in cls.layers] == [10]  # forward's is not built
    total = class_totals((cls,))["M"]
    assert (total.params, total.complete) == (72, False)


def test_dtypes_through_import_aliases_and_float64() -> None:
    text = """import torch as T
import torch.nn as nn
m = AutoModelForCausalLM.from_pretrained("gpt2", dtype=T.float32, config=cfg)
class M(nn.Module):
    def __init__(self):
        self.a = nn.Linear(2, 2, dtype=T.float64)
        self.b = nn.Linear(2, 2, dtype=self.dtype)
"""
    analysis = analyze(text)
    [load] = analysis.loads
    assert (load.model_ref, load.dtype) == ("gpt2", "fp32")
    [cls] = analysis.classes
    assert [layer.dtype for layer in cls.layers] == ["fp64", "?"]


def test_lines_break_only_where_lsp_breaks_them() -> None:
    text = 'a = "\u2028"\n\x0cb = 1\r\nm = AutoModel.from_pretrained("gpt2")\n'
    analysis = analyze(text)
    assert analysis.syntax_problems == ()
    assert analysis.loads[0].span.start == Position(2, 4)


def test_cast_chained_on_a_load_sets_its_dtype() -> None:
    """Regression: ``from_pretrained("gpt2").half()`` was sized in fp32."""
    [load] = analyze(
        "from transformers import AutoModelForCausalLM\n"
        'm = AutoModelForCausalLM.from_pretrained("gpt2").half()\n'
    ).loads
    assert load.model_ref == "gpt2" and load.dtype == "fp16"


def test_from_config_of_a_pretrained_config_names_its_model() -> None:
    """Regression: ``from_config(cfg)`` with ``cfg = AutoConfig.from_pretrained(ID)`` got
    nothing."""
    [load] = analyze(
        "from transformers import AutoConfig, AutoModelForCausalLM\n"
        'cfg = AutoConfig.from_pretrained("gpt2")\n'
        "m = AutoModelForCausalLM.from_config(cfg)\n"
    ).loads
    assert load.model_ref == "gpt2" and load.loader.endswith("from_config")
