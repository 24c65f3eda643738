"""The static evaluator against torch's own count on the meta device: module classes with
their config's defaults, on model files in the styles people write (a dataclass config with
a tied head and a hand-written LayerNorm; a ``ModelArgs`` with ``__post_init__``, a helper
function and named configs); and that it ends, without raising, on any text."""

from __future__ import annotations

import ast

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from memlens.lsp_server.analysis.evaluator import STEP_BUDGET, Evaluator, class_size
from tests.support.meta_truth import run_on_meta, torch_size
from tests.support.model_sources import DATACLASS_GPT, NAMED_CONFIGS

SOURCES = {"dataclass_gpt": DATACLASS_GPT, "named_configs": NAMED_CONFIGS}


def _classes(source: str) -> list[str]:
    return [n.name for n in ast.parse(source).body if isinstance(n, ast.ClassDef)]


@pytest.mark.parametrize("style", sorted(SOURCES))
def test_class_sizes_with_config_defaults_match_torch(style: str) -> None:
    source = SOURCES[style]
    namespace = run_on_meta(source)
    run = Evaluator(ast.parse(source))
    checked = 0
    for name in _classes(source):
        size = class_size(run, name)
        if size is None or size.unknown:
            continue
        cls = namespace[name]
        config = namespace[size.defaults_of]() if size.defaults_of else None
        with torch.device("meta"):
            module = cls(config) if config is not None else cls()
        assert (size.params, size.bytes) == torch_size(module), name
        checked += 1
    assert checked >= 2


def test_tied_head_counts_once_and_custom_norm_parameters_count() -> None:
    """Regression: ``wte.weight = lm_head.weight`` was counted twice (Σ 163.0M for a 124.4M
    model) and ``nn.Parameter(torch.ones(n))`` never."""
    size = class_size(Evaluator(ast.parse(DATACLASS_GPT)), "GPT")
    assert size is not None and not size.unknown
    assert size.params == 124_475_904 and size.defaults_of == "GPTConfig"
    assert dict(size.parts)["transformer"] == 85_842_432  # wte's shared weight in lm_head


def test_named_config_classmethod_and_post_init() -> None:
    size = class_size(Evaluator(ast.parse(NAMED_CONFIGS)), "Transformer")
    assert size is not None and size.params == 6_738_415_616 and not size.unknown


def test_classes_without_defaults_say_what_is_unknown() -> None:
    source = (
        "import torch.nn as nn\n"
        "class Head(nn.Module):\n"
        "    def __init__(self, dim, vocab=1000):\n"
        "        super().__init__()\n"
        "        self.proj = nn.Linear(dim, vocab)\n"
        "        self.emb = nn.Embedding(vocab, 64)\n"
        "        self.other = SomewhereElse(dim)\n"
    )
    size = class_size(Evaluator(ast.parse(source)), "Head")
    assert size is not None
    assert size.params == 64_000 and size.unknown == ("proj", "other")


@pytest.mark.parametrize(
    "bad",
    [
        "GPTConfig(n_layers=3)",  # a field the config does not have
        "GPTConfig(1, 2, 3, 4, 5, 6, 7)",  # more positional arguments than fields
        "GPTConfig(n_head=5)",  # the constructor's assert fails: torch raises too
    ],
)
def test_bad_config_arguments_give_no_figure(bad: str) -> None:
    from memlens.lsp_server.analysis import analyze

    analysis = analyze(DATACLASS_GPT + f"\nbad = GPT({bad})\n")
    assert not [b for b in analysis.builds if b.target == "bad"]


RUNAWAY = """
import torch.nn as nn
def forever(n):
    return forever(n + 1)
def spin():
    x = [i for i in range(10**12)]
    return x
N = forever(1)
M = len(spin())
class Big(nn.Module):
    def __init__(self, n=N, m=M):
        super().__init__()
        self.a = nn.Linear(n, m)
        self.b = nn.Linear(8, 8)
        for i in range(10**9):
            self.b = nn.Linear(i, i)
"""


def test_runaway_code_stops_within_budget() -> None:
    run = Evaluator(ast.parse(RUNAWAY))
    size = class_size(run, "Big")
    assert run.steps >= -1 and run.steps < STEP_BUDGET
    assert size is None or size.params in (0, 72)


_FRAGMENTS = st.sampled_from(
    [
        *DATACLASS_GPT.splitlines(),
        *NAMED_CONFIGS.splitlines(),
        "x = x + 1",
        "while True: pass",
        "def f(*a, **k): return f(*a, **k)",
        "self.w = nn.Linear(f(), 3)",
        "class C(nn.Module):",
        "    def __init__(self, c: C = C()):",
        "        self.c = C(self)",
        "m = GPT(GPTConfig(**{'n_layer': -1}))",
        "v = [1] * 10**9",
        "s = 'a' * 10**12",
        "q = 2 ** 10 ** 10",
    ]
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_FRAGMENTS, max_size=40), st.text(max_size=60))
def test_any_text_ends_without_raising(lines: list[str], noise: str) -> None:
    from memlens.lsp_server.analysis import analyze

    analysis = analyze("\n".join([*lines, noise]))
    for cls in analysis.classes:
        assert cls.size is None or cls.size.params >= 0
