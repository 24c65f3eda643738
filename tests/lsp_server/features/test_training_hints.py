"""Training sites' hints, hover and code lens through a real LSP client
(memlens/lsp_server/features/training_estimates.py, training_hover.py, code_lens.py)."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from memlens.lsp_server.features.labels import HINT_MAX_CHARS
from memlens.profiler.training_config import (
    Optimizer,
    Precision,
    TrainingConfig,
    TrainMethod,
)
from memlens.units import format_bytes
from tests.support.lsp_client import open_document
from tests.support.training_sources import (
    EXAMPLE,
    SFT_LORA,
    document_hints,
    hints_by_line,
    model_estimate,
    peak_hint,
    training_hints,
)

QWEN = "Qwen/Qwen2.5-0.5B"
LLAMA = "meta-llama/Llama-2-7b-hf"
FULL_EXAMPLE = TrainingConfig(batch=8, seq=1024)
"""What examples/train_lora.py states: a full fp32 AdamW fine-tune, batch 8 × 1024."""


def _line(text: str, start: str) -> int:
    return next(i for i, line in enumerate(text.splitlines()) if line.lstrip().startswith(start))


async def test_example_hints_equal_the_profilers_estimate(
    client: LanguageClient, workspace: Path
) -> None:
    text = EXAMPLE.read_text()
    uri = open_document(client, workspace / "train_example.py", text)
    by_line = await hints_by_line(client, uri, text)
    expected = model_estimate(QWEN, FULL_EXAMPLE)
    peak, configuration = peak_hint(QWEN, FULL_EXAMPLE, format_bytes(expected.peak_bytes))
    trainer_end = _line(text, "data_collator=") + 1  # the Trainer call's closing line
    assert by_line[trainer_end] == [peak]
    # the hand-written loop: the same configuration at loss.backward()
    assert by_line[_line(text, "loss.backward()")] == [peak]
    assert by_line[_line(text, "optimizer = torch.optim.AdamW")] == [
        f"adamw states ≈ {format_bytes(expected.optimizer_bytes)}"
    ]
    assert await training_hints(client, uri, text) == [(peak, configuration)] * 2


async def test_every_hint_fits_vs_code_s_inlay_hint_length(
    client: LanguageClient, workspace: Path
) -> None:
    """Regression: the training hints ran to 62 characters and VS Code, which cuts a line's
    hints at 43 by default, showed ``train step ≈ 39.2 GiB · full · adamw · fp32 ·…``."""
    for name, text in (("example.py", EXAMPLE.read_text()), ("sft.py", SFT_LORA)):
        uri = open_document(client, workspace / name, text)
        labels = [str(h.label) for h in await document_hints(client, uri, text)]
        assert labels and all(len(label) <= HINT_MAX_CHARS for label in labels), labels


async def test_lora_hint_is_what_peft_prints(client: LanguageClient, workspace: Path) -> None:
    text = (
        "import torch\nfrom peft import LoraConfig, get_peft_model\n"
        "from transformers import AutoModelForCausalLM\n"
        f'base = AutoModelForCausalLM.from_pretrained("{LLAMA}", dtype=torch.bfloat16)\n'
        'lora = LoraConfig(r=8, target_modules=["q_proj", "v_proj"])\n'
        "model = get_peft_model(base, lora)\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    )
    uri = open_document(client, workspace / "peft_hint.py", text)
    by_line = await hints_by_line(client, uri, text)
    # the published figure: Llama-2-7B, r=8 on q_proj and v_proj
    lora_hint = next(h for h in await document_hints(client, uri, text) if h.position.line == 5)
    assert str(lora_hint.tooltip).splitlines()[1] == (
        "trainable params: 4,194,304 || all params: 6,742,609,920 || trainable%: 0.0622"
    )
    config = TrainingConfig(
        method=TrainMethod.LORA,
        lora_rank=8,
        lora_targets=("q_proj", "v_proj"),
        precision=Precision.BF16_MIXED,
        optimizer=Optimizer.SGD,
        seq=1,
    )
    expected = model_estimate(LLAMA, config)
    assert by_line[5] == [f"trainable 4,194,304 (0.06%) · {format_bytes(expected.adapter_bytes)}"]
    assert by_line[6] == ["sgd states ≈ 0 B"]


async def test_sft_trainer_with_lora_from_memory(client: LanguageClient, workspace: Path) -> None:
    """trl's SFT recipe: LoRA through ``peft_config=``, SFTConfig's max_length and flags."""
    uri = open_document(client, workspace / "sft_lora.py", SFT_LORA)
    config = TrainingConfig(
        method=TrainMethod.LORA,
        lora_rank=8,
        lora_targets=("q_proj", "v_proj"),
        precision=Precision.BF16_MIXED,
        gradient_checkpointing=True,
        batch=2,
        seq=2048,
    )
    expected = model_estimate(LLAMA, config)
    assert await training_hints(client, uri, SFT_LORA) == [
        peak_hint(LLAMA, config, format_bytes(expected.peak_bytes))
    ]


async def test_qlora_from_a_4bit_load_and_kbit_preparation(
    client: LanguageClient, workspace: Path
) -> None:
    text = (
        "import torch\nfrom peft import LoraConfig, get_peft_model, "
        "prepare_model_for_kbit_training\n"
        "from transformers import AutoModelForCausalLM, BitsAndBytesConfig\n"
        "quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16)\n"
        f'model = AutoModelForCausalLM.from_pretrained("{LLAMA}", quantization_config=quant)\n'
        "model = prepare_model_for_kbit_training(model)\n"
        "model = get_peft_model(model, LoraConfig(r=16))\n"
        "optimizer = torch.optim.AdamW(model.parameters())\n"
        "inputs = torch.randint(0, 32000, (4, 256))\n"
        "loss = model(input_ids=inputs, labels=inputs).loss\n"
        "loss.backward()\n"
    )
    uri = open_document(client, workspace / "qlora.py", text)
    # prepare_model_for_kbit_training turns gradient checkpointing on
    config = TrainingConfig(
        method=TrainMethod.QLORA, lora_rank=16, gradient_checkpointing=True, batch=4, seq=256
    )
    expected = model_estimate(LLAMA, config)
    assert await training_hints(client, uri, text) == [
        peak_hint(LLAMA, config, format_bytes(expected.peak_bytes))
    ]


async def test_hover_shows_the_training_table(client: LanguageClient, workspace: Path) -> None:
    text = EXAMPLE.read_text()
    uri = open_document(client, workspace / "train_hover.py", text)
    line = _line(text, "trainer = Trainer(")
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line, 14),
        )
    )
    assert hover is not None and isinstance(hover.contents, types.MarkupContent)
    markdown = hover.contents.value
    expected = model_estimate(QWEN, FULL_EXAMPLE)
    header = "| block | weights | gradients | optimizer | master | activations | adapters |"
    assert header in markdown
    layer = next(b for b in expected.blocks if b.name.endswith(".0"))
    layers = sum(1 for b in expected.blocks if b.kind == layer.kind)
    assert f"×{layers} | {format_bytes(layer.weight_bytes * layers)} |" in markdown
    totals = (
        f"| **total** | {format_bytes(expected.weight_bytes)} | "
        f"{format_bytes(expected.gradient_bytes)} | {format_bytes(expected.optimizer_bytes)} |"
    )
    assert totals in markdown
    assert f"Step peak: {format_bytes(expected.peak_bytes)}" in markdown
    assert "does **not** fit the 24.0 GiB budget" in markdown


async def _lenses(client: LanguageClient, uri: str) -> list[types.CodeLens]:
    return list(
        await client.text_document_code_lens_async(
            types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )
        or []
    )


async def test_profile_training_lens_when_trusted(client: LanguageClient, workspace: Path) -> None:
    text = EXAMPLE.read_text()
    uri = open_document(client, workspace / "train_lens.py", text)
    lenses = [
        lens
        for lens in await _lenses(client, uri)
        if lens.command and lens.command.title == "Profile training step"
    ]
    lines = [_line(text, "trainer = Trainer("), _line(text, "loss.backward()")]
    assert [lens.range.start.line for lens in lenses] == lines
    assert all(lens.command and lens.command.command == "memlens.profile" for lens in lenses)
    assert [list(lens.command.arguments or []) for lens in lenses if lens.command] == [
        [uri, line] for line in lines
    ]


async def test_no_training_lens_when_untrusted(
    untrusted_client: LanguageClient, workspace: Path
) -> None:
    text = EXAMPLE.read_text()
    uri = open_document(untrusted_client, workspace / "train_untrusted.py", text)
    titles = [lens.command.title for lens in await _lenses(untrusted_client, uri) if lens.command]
    assert "Profile training step" not in titles
    assert await training_hints(untrusted_client, uri, text)  # static hints stay
