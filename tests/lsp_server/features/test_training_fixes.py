"""The train-over-budget diagnostic, its quick fixes and the train-config diagnostic
through a real LSP client (memlens/lsp_server/features/training_diagnostics.py,
training_fixes.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from memlens.profiler.training_config import Optimizer, Precision, TrainingConfig, TrainMethod
from memlens.units import format_bytes
from tests.support.lsp_client import apply_edits, open_document, pulled_diagnostics
from tests.support.training_sources import EXAMPLE, model_estimate, peak_hint, training_hints

QWEN = "Qwen/Qwen2.5-0.5B"
FULL = TrainingConfig(batch=8, seq=1024)
EXPECTED_FIXES = {
    "enable gradient checkpointing": TrainingConfig(batch=8, seq=1024, gradient_checkpointing=True),
    "train in bf16 mixed precision": TrainingConfig(
        batch=8, seq=1024, precision=Precision.BF16_MIXED
    ),
    "use an 8-bit AdamW": TrainingConfig(batch=8, seq=1024, optimizer=Optimizer.ADAMW8BIT),
    "train LoRA adapters (r=16)": TrainingConfig(method=TrainMethod.LORA, batch=8, seq=1024),
    "train QLoRA adapters (r=16) on a 4-bit base": TrainingConfig(
        method=TrainMethod.QLORA, batch=8, seq=1024
    ),
}
"""The example Trainer's fixes, in the order the diagnostic tries them → the
configuration the edited code states."""
_PEAK = re.compile(r"\(train step ≈ ([^)]+)\)$")


def _line(text: str, start: str) -> int:
    return next(i for i, line in enumerate(text.splitlines()) if line.lstrip().startswith(start))


async def _actions(
    client: LanguageClient, uri: str, line: int, diagnostics: list[types.Diagnostic]
) -> list[types.CodeAction]:
    at = types.Position(line, 12)
    found = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(at, at),
            context=types.CodeActionContext(diagnostics=diagnostics),
        )
    )
    return [a for a in found or [] if isinstance(a, types.CodeAction)]


async def test_over_budget_names_the_first_change_that_fits(
    client: LanguageClient, workspace: Path
) -> None:
    text = EXAMPLE.read_text()
    uri = open_document(client, workspace / "over_budget.py", text)
    found = [d for d in await pulled_diagnostics(client, uri) if d.code == "train-over-budget"]
    assert [d.range.start.line for d in found] == [
        _line(text, "trainer = Trainer("),
        _line(text, "loss.backward()"),
    ]
    full = model_estimate(QWEN, FULL)
    checkpointed = model_estimate(QWEN, EXPECTED_FIXES["enable gradient checkpointing"])
    assert full.peak_bytes > 24 << 30 >= checkpointed.peak_bytes
    assert f"peaks at {format_bytes(full.peak_bytes)}" in found[0].message
    assert found[0].message.endswith(
        f"with gradient checkpointing it would need {format_bytes(checkpointed.peak_bytes)} and fit"
    )
    assert found[0].data == {"fits": "gradient checkpointing"}


async def test_no_diagnostic_under_budget(client: LanguageClient, workspace: Path) -> None:
    text = EXAMPLE.read_text().replace(
        "per_device_train_batch_size=8", "per_device_train_batch_size=1"
    )
    uri = open_document(client, workspace / "under_budget.py", text)
    codes = [d.code for d in await pulled_diagnostics(client, uri)]
    assert model_estimate(QWEN, TrainingConfig(batch=1, seq=1024)).peak_bytes <= 24 << 30
    assert codes.count("train-over-budget") == 1  # only the hand loop (batch 8) is over


@pytest.mark.parametrize(
    ("anchor", "expected"),
    [
        ("trainer = Trainer(", EXPECTED_FIXES),
        (
            "loss.backward()",
            {
                title: config
                for title, config in EXPECTED_FIXES.items()
                if title in ("enable gradient checkpointing", "use an 8-bit AdamW")
            },
        ),
    ],
)
async def test_each_fix_reaches_the_peak_its_title_promises(
    client: LanguageClient,
    workspace: Path,
    anchor: str,
    expected: dict[str, TrainingConfig],
) -> None:
    """Regression: a quick fix once promised a size the code it wrote could not reach.
    Each fix's edit is applied, the edited text analysed again, and its hint compared with
    the title's figure and with the profiler's estimate of the expected configuration."""
    text = EXAMPLE.read_text()
    uri = open_document(client, workspace / "fixes.py", text)
    line = _line(text, anchor)
    diagnostics = [
        d
        for d in await pulled_diagnostics(client, uri)
        if d.code == "train-over-budget" and d.range.start.line == line
    ]
    actions = await _actions(client, uri, line, diagnostics)
    titles = [a.title.removeprefix("memlens: ").split(" (train step")[0] for a in actions]
    assert titles == list(expected)
    assert [a.is_preferred for a in actions] == [i == 0 for i in range(len(actions))]
    index = 0 if anchor.startswith("trainer") else 1
    for number, (action, config) in enumerate(zip(actions, expected.values(), strict=True)):
        assert action.edit is not None and action.edit.changes is not None
        fixed = apply_edits(text, list(action.edit.changes[uri]))
        ast.parse(fixed)
        promised = _PEAK.search(action.title)
        assert promised is not None
        expected_peak = format_bytes(model_estimate(QWEN, config).peak_bytes)
        assert promised.group(1) == expected_peak
        edited = open_document(client, workspace / f"fixed_{index}_{number}.py", fixed)
        hints = await training_hints(client, edited, fixed)
        assert hints[index] == peak_hint(QWEN, config, expected_peak)


async def test_quick_fix_imports_and_wraps(client: LanguageClient, workspace: Path) -> None:
    text = EXAMPLE.read_text()
    uri = open_document(client, workspace / "wrap.py", text)
    actions = await _actions(client, uri, _line(text, "trainer = Trainer("), [])
    qlora = next(a for a in actions if "QLoRA" in a.title)
    assert qlora.edit is not None and qlora.edit.changes is not None
    fixed = apply_edits(text, list(qlora.edit.changes[uri]))
    assert "from peft import LoraConfig, get_peft_model\n" in fixed
    assert "from transformers import BitsAndBytesConfig\n" in fixed
    assert "quantization_config=BitsAndBytesConfig(load_in_4bit=True))" in fixed
    assert 'model = get_peft_model(model, LoraConfig(r=16, task_type="CAUSAL_LM"))\n' in fixed
    checkpointing = next(a for a in actions if "gradient checkpointing" in a.title)
    assert checkpointing.edit is not None and checkpointing.edit.changes is not None
    fixed = apply_edits(text, list(checkpointing.edit.changes[uri]))
    assert "    logging_steps=10,\n    gradient_checkpointing=True,\n)" in fixed


BAD_INPUT = {
    "rank 0": (
        "LoraConfig(r=0)",
        "the LoRA rank must be an integer between 1 and 16384, got 0",
    ),
    "no such target": (
        'LoraConfig(r=8, target_modules=["qkv"])',
        "LoRA target 'qkv' matches no linear module",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
async def test_bad_lora_config_is_a_clear_diagnostic(
    client: LanguageClient, workspace: Path, case: str
) -> None:
    lora, message = BAD_INPUT[case]
    text = (
        "import torch\nfrom peft import LoraConfig, get_peft_model\n"
        "from transformers import AutoModelForCausalLM\n"
        f'base = AutoModelForCausalLM.from_pretrained("{QWEN}")\n'
        f"model = get_peft_model(base, {lora})\n"
        "optimizer = torch.optim.AdamW(model.parameters())\n"
    )
    uri = open_document(client, workspace / f"bad_{case.replace(' ', '_')}.py", text)
    found = [d for d in await pulled_diagnostics(client, uri) if d.code == "train-config"]
    assert [d.range.start.line for d in found] == [4]  # once, not again at the optimizer
    assert message in found[0].message
    assert found[0].severity == types.DiagnosticSeverity.Warning


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ('optim="adamw_foo"', "optim='adamw_foo' is not an optimizer memlens can size"),
        ("per_device_train_batch_size=0", "per_device_train_batch_size=0: a step needs"),
    ],
)
async def test_bad_training_arguments_are_a_clear_diagnostic(
    client: LanguageClient, workspace: Path, argument: str, message: str
) -> None:
    text = (
        "from transformers import AutoModelForCausalLM, Trainer, TrainingArguments\n"
        f'model = AutoModelForCausalLM.from_pretrained("{QWEN}")\n'
        f'args = TrainingArguments(output_dir="out", {argument})\n'
        "trainer = Trainer(model=model, args=args)\n"
    )
    uri = open_document(client, workspace / "bad_args.py", text)
    found = [d for d in await pulled_diagnostics(client, uri) if d.code == "train-config"]
    assert [d.range.start.line for d in found] == [3]
    assert message in found[0].message
    assert not await training_hints(client, uri, text)  # no figure for a step that cannot run
