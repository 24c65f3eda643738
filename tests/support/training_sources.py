"""Training scripts the language-server tests open, and how to read their hints."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from memlens.profiler.configs import resolve_config
from memlens.profiler.training import TrainingEstimate, training_estimate
from memlens.profiler.training_config import TrainingConfig

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_lora.py"
"""The example fine-tuning script (Qwen2.5-0.5B, full fine-tune, over a 24 GiB budget)."""

SFT_LORA = '''"""Supervised fine-tuning with LoRA, as trl's examples write it."""

from datasets import load_dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

model_id = "meta-llama/Llama-2-7b-hf"
model = AutoModelForCausalLM.from_pretrained(model_id, torch_dtype="auto")
tokenizer = AutoTokenizer.from_pretrained(model_id)
dataset = load_dataset("trl-lib/Capybara", split="train")

peft_config = LoraConfig(
    r=8,
    lora_alpha=16,
    lora_dropout=0.05,
    target_modules=["q_proj", "v_proj"],
    task_type="CAUSAL_LM",
)
training_args = SFTConfig(
    output_dir="llama-sft",
    per_device_train_batch_size=2,
    gradient_accumulation_steps=8,
    gradient_checkpointing=True,
    bf16=True,
    max_length=2048,
    learning_rate=2e-4,
)
trainer = SFTTrainer(
    model=model,
    args=training_args,
    train_dataset=dataset,
    processing_class=tokenizer,
    peft_config=peft_config,
)
trainer.train()
'''


def model_estimate(model: str, config: TrainingConfig) -> TrainingEstimate:
    """The profiler's estimate for ``model`` (resolved offline) under ``config``."""
    resolved = resolve_config(model, allow_network=False)
    return training_estimate(resolved.config, resolved.model, config)


async def document_hints(client: LanguageClient, uri: str, text: str) -> list[types.InlayHint]:
    """Every inlay hint of the document, in the server's order."""
    whole = types.Range(types.Position(0, 0), types.Position(len(text.splitlines()) + 1, 0))
    hints = await client.text_document_inlay_hint_async(
        types.InlayHintParams(text_document=types.TextDocumentIdentifier(uri=uri), range=whole)
    )
    return list(hints or [])


async def hints_by_line(client: LanguageClient, uri: str, text: str) -> dict[int, list[str]]:
    """Every hint's label by its 0-based line."""
    found: dict[int, list[str]] = {}
    for hint in await document_hints(client, uri, text):
        found.setdefault(hint.position.line, []).append(str(hint.label))
    return found


async def training_hints(client: LanguageClient, uri: str, text: str) -> list[tuple[str, str]]:
    """The hints that state a training step's peak, in source order: the label and the
    first line of the tooltip (``MODEL: configuration``)."""
    hints = sorted(await document_hints(client, uri, text), key=lambda h: h.position.line)
    return [
        (str(h.label), str(h.tooltip).splitlines()[0])
        for h in hints
        if str(h.label).startswith("train step ≈ ")
    ]


def peak_hint(model: str, config: TrainingConfig, peak: str) -> tuple[str, str]:
    """What :func:`training_hints` reads for a step of ``model`` under ``config``."""
    label = f"train step ≈ {peak} · batch {config.batch} × {config.seq}"
    return label, f"{model}: {config.describe()}"
