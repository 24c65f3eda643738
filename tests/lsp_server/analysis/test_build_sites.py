"""Calls that build a module class of the file, sized by the evaluator, against torch's
count of the same expression on the meta device."""

from __future__ import annotations

import ast

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from memlens.lsp_server.analysis import analyze
from tests.support.meta_truth import build_on_meta, run_on_meta, torch_size
from tests.support.model_sources import DATACLASS_GPT, NAMED_CONFIGS


def _call_texts(text: str) -> dict[str, str]:
    """Each build's target (or call text) → the call's source text."""
    tree = ast.parse(text)
    calls = {
        (n.lineno - 1, n.col_offset, n.end_col_offset): ast.get_source_segment(text, n)
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
    }
    return {
        str(b.target): calls[(b.span.start.line, b.span.start.col, b.span.end.col)] or ""
        for b in analyze(text).builds
    }


def test_builds_in_both_styles_match_torch() -> None:
    for text, expected in (
        (DATACLASS_GPT, {"small"}),
        (NAMED_CONFIGS, {"model", "seven"}),
    ):
        namespace = run_on_meta(text)
        analysis = analyze(text)
        texts = _call_texts(text)
        assert set(texts) >= expected
        for build in analysis.builds:
            module = build_on_meta(namespace, texts[str(build.target)])
            assert (build.size.params, build.size.bytes) == torch_size(module), build


def test_half_chained_on_a_build_halves_its_bytes() -> None:
    [small] = [b for b in analyze(DATACLASS_GPT).builds if b.target == "small"]
    assert small.size.dtype == "fp16" and small.size.bytes == small.size.params * 2


def test_call_inside_a_function_is_sized_with_its_locals() -> None:
    text = DATACLASS_GPT + (
        "\ndef main(layers=3):\n"
        "    cfg = GPTConfig(n_layer=4, n_embd=256, n_head=8)\n"
        "    model = GPT(cfg).to(torch.bfloat16)\n"
        "    other = GPT(GPTConfig(n_layer=layers))\n"
    )
    builds = {b.target: b for b in analyze(text).builds}
    namespace = run_on_meta(text)
    module = build_on_meta(namespace, "GPT(GPTConfig(n_layer=4, n_embd=256, n_head=8))")
    params, _ = torch_size(module)
    assert builds["model"].size.params == params and builds["model"].size.dtype == "bf16"
    # a parameter may be passed anything: what depends on it is unknown, the rest a floor
    assert builds["other"].size.unknown == ("transformer.h",)
    assert builds["other"].size.params == 39_421_440


@settings(max_examples=20, deadline=None)
@given(
    layers=st.integers(0, 6),
    heads=st.sampled_from([1, 2, 3, 4, 8]),
    width=st.sampled_from([24, 32, 64]),
    vocab=st.integers(1, 5000),
    block=st.integers(1, 2048),
    bias=st.booleans(),
    extra=st.sampled_from(["", ", bad=1"]),
)
def test_random_overrides_agree_with_torch_or_say_nothing(
    layers: int, heads: int, width: int, vocab: int, block: int, bias: bool, extra: str
) -> None:
    call = (
        f"GPT(GPTConfig(n_layer={layers}, n_head={heads}, n_embd={width}, "
        f"vocab_size={vocab}, block_size={block}, bias={bias}{extra}))"
    )
    text = DATACLASS_GPT + f"\nprobe = {call}\n"
    found = [b for b in analyze(text).builds if b.target == "probe"]
    try:
        truth = torch_size(build_on_meta(_GPT_ON_META, call))
    except (AssertionError, TypeError):
        assert not found  # torch refuses it (a failing assert, an unknown field): so does memlens
        return
    assert found and (found[0].size.params, found[0].size.bytes) == truth


_GPT_ON_META = run_on_meta(DATACLASS_GPT)


def _on_meta_in(text: str, dtype: torch.dtype, call: str) -> tuple[int, int]:
    """torch's count of ``call`` built under ``torch.set_default_dtype(dtype)`` (restored
    after: the default is global state)."""
    previous = torch.get_default_dtype()
    try:
        namespace = run_on_meta(text)  # runs the file's own set_default_dtype calls
        torch.set_default_dtype(dtype)
        return torch_size(build_on_meta(namespace, call))
    finally:
        torch.set_default_dtype(previous)


def test_set_default_dtype_applies_to_builds_after_it() -> None:
    text = DATACLASS_GPT.replace(
        "self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)",
        "self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)\n"
        "        self.probe = nn.Linear(config.n_embd, 3, dtype=torch.float32)",
    )
    text += (
        "\nbefore = GPT(GPTConfig(n_layer=3))\n"
        "torch.set_default_dtype(torch.bfloat16)\n"
        "after = GPT(GPTConfig(n_layer=3))\n"
        "halved = GPT(GPTConfig(n_layer=3)).half()\n"
        "\n\ndef main():\n"
        "    inherited = GPT(GPTConfig(n_layer=3))\n"
        "    torch.set_default_dtype(torch.float16)\n"
        "    inner = GPT(GPTConfig(n_layer=3))\n"
        "    if inner:\n"
        "        torch.set_default_dtype(torch.float32)\n"
        "        scoped = GPT(GPTConfig(n_layer=3))\n"
        "    unscoped = GPT(GPTConfig(n_layer=3))\n"
        '    load = AutoModelForCausalLM.from_pretrained("gpt2")\n'
    )
    builds = {b.target: b for b in analyze(text).builds}
    call = "GPT(GPTConfig(n_layer=3))"
    for target, dtype in (
        ("before", torch.float32),
        ("after", torch.bfloat16),
        ("inherited", torch.bfloat16),
        ("inner", torch.float16),
        ("scoped", torch.float32),
        ("unscoped", torch.float16),
    ):
        size = builds[target].size
        assert (size.params, size.bytes) == _on_meta_in(text, dtype, call), target
        # the probe layer keeps the float32 it names: the parameters' dtypes are mixed
        assert size.dtype == ("fp32" if dtype == torch.float32 else "mixed"), target
    assert builds["halved"].size.dtype == "fp16"
    # from_pretrained takes the checkpoint's dtype (transformers 5's "auto"), not the default
    [load] = analyze(text).loads
    assert load.dtype is None


def test_a_default_dtype_memlens_cannot_know_hides_the_builds_after_it() -> None:
    # bad or unknown arguments: torch refuses a string or an integer dtype; a variable or
    # a missing argument is not static. None of them raises; the builds after them get
    # no figure (the dtype of every tensor is unknown), those before keep theirs.
    for argument in ('"bfloat16"', "torch.int8", "dtype", "", "torch.bfloat16, 1"):
        text = DATACLASS_GPT + (
            f"\nbefore = GPT(GPTConfig(n_layer=2))\n"
            f"torch.set_default_dtype({argument})\n"
            "after = GPT(GPTConfig(n_layer=2))\n"
        )
        assert [b.target for b in analyze(text).builds] == [None, "small", "before"], argument


_TORCH_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float64": torch.float64}


@settings(max_examples=15, deadline=None)
@given(
    default=st.sampled_from([None, *_TORCH_DTYPES]),
    cast=st.sampled_from(["", ".half()", ".bfloat16()", ".float()", ".to(torch.bfloat16)"]),
    layers=st.integers(0, 3),
)
def test_default_dtype_and_casts_agree_with_torch(
    default: str | None, cast: str, layers: int
) -> None:
    call = f"GPT(GPTConfig(n_layer={layers}, n_embd=64, n_head=4)){cast}"
    setting = f"torch.set_default_dtype(torch.{default})\n" if default else ""
    text = DATACLASS_GPT + f"\n{setting}probe = {call}\n"
    [found] = [b for b in analyze(text).builds if b.target == "probe"]
    previous = torch.get_default_dtype()
    try:
        torch.set_default_dtype(_TORCH_DTYPES[default] if default else torch.float32)
        truth = torch_size(build_on_meta(_GPT_ON_META, call))
    finally:
        torch.set_default_dtype(previous)
    assert (found.size.params, found.size.bytes) == truth
