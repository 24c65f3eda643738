"""Training sites and the configuration each states, from source text alone
(memlens/lsp_server/analysis/training_sites.py, training_script.py, training_changes.py)."""

from __future__ import annotations

from memlens.lsp_server.analysis import TrainingSite, analyze
from memlens.profiler.training_config import (
    Optimizer,
    Precision,
    Sharding,
    TrainingConfig,
    TrainMethod,
)

LOAD = (
    "import torch\nfrom transformers import AutoModelForCausalLM\n"
    'model = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-0.5B")\n'
)


def _sites(text: str, kind: str) -> list[TrainingSite]:
    return [s for s in analyze(text).training if s.kind == kind]


def test_trainer_arguments_defaults_and_assumptions() -> None:
    text = LOAD + (
        "from transformers import Trainer, TrainingArguments\n"
        'args = TrainingArguments(output_dir="o", deepspeed="ds_zero3.json")\n'
        "trainer = Trainer(model, args)\n"
    )
    [site] = _sites(text, "trainer")
    assert site.config == TrainingConfig(batch=8, seq=512)
    assert site.assumed == (
        "batch 8 (the default)",
        "seq 512 (not stated)",
        "deepspeed: its ZeRO stage is not a literal here; figures unsharded",
    )
    assert site.sharding is Sharding.NONE


def test_sft_trainer_states_the_sequence_and_kwargs_hide_everything() -> None:
    text = LOAD + (
        "from trl import SFTConfig, SFTTrainer\n"
        'cfg = SFTConfig(per_device_train_batch_size=4, optim="adafactor", fp16=True)\n'
        "a = SFTTrainer(model=model, args=cfg, max_seq_length=256)\n"
        "b = SFTTrainer(model=model, args=SFTConfig(**options))\n"
    )
    first, second = _sites(text, "trainer")
    assert first.config == TrainingConfig(
        optimizer=Optimizer.ADAFACTOR, precision=Precision.FP16_MIXED, batch=4, seq=256
    )
    assert [c.name for c in first.changes] == ["gradient checkpointing", "LoRA", "QLoRA"]
    assert second.config is None and second.problem is None


def test_hand_loop_reads_shapes_autocast_and_checkpointing() -> None:
    text = LOAD + (
        "import bitsandbytes as bnb\n"
        "model.gradient_checkpointing_enable()\n"
        "optimizer = bnb.optim.PagedAdamW8bit(model.parameters(), lr=1e-4)\n"
        "x = torch.randint(0, 1000, (2, 128))\n"
        "with torch.autocast('cuda', dtype=torch.bfloat16):\n"
        "    loss = model(x, labels=x).loss\n"
        "loss.backward()\n"
    )
    [site] = _sites(text, "backward")
    assert site.config == TrainingConfig(
        optimizer=Optimizer.ADAMW8BIT,
        precision=Precision.BF16_MIXED,
        gradient_checkpointing=True,
        batch=2,
        seq=128,
    )
    assert [c.name for c in site.changes] == ["LoRA", "QLoRA"]


def test_hand_loop_without_a_known_batch_has_no_step() -> None:
    text = LOAD + (
        "optimizer = torch.optim.AdamW(model.parameters())\n"
        "for batch in loader:\n"
        "    model(**batch).loss.backward()\n"
    )
    [backward] = _sites(text, "backward")
    assert backward.config is None and backward.problem is None
    [optimizer] = _sites(text, "optimizer")  # its states need no batch
    assert optimizer.config is not None and optimizer.config.optimizer is Optimizer.ADAMW


def test_sgd_with_momentum_is_not_sized() -> None:
    text = LOAD + "opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)\n"
    [site] = _sites(text, "optimizer")
    assert site.config is None


def test_a_name_bound_to_something_else_is_no_longer_the_model() -> None:
    text = LOAD + "model = build_other()\nopt = torch.optim.AdamW(model.parameters())\n"
    assert not analyze(text).training


def test_lora_fix_only_where_the_wrap_binds_the_models_own_scope() -> None:
    """Regression: ``model = get_peft_model(model, …)`` inside a function that does not
    bind ``model`` makes it a local read before assignment (UnboundLocalError)."""
    loop = (
        "opt = torch.optim.AdamW(model.parameters())\n"
        "x = torch.randint(0, 1000, (2, 128))\n"
        "model(x, labels=x).loss.backward()\n"
    )
    inside = LOAD + "def train():\n" + "".join(f"    {line}\n" for line in loop.splitlines())
    [site] = _sites(inside, "backward")
    assert [c.name for c in site.changes] == ["gradient checkpointing", "8-bit optimizer"]
    [site] = _sites(LOAD + loop, "backward")
    assert [c.name for c in site.changes] == [
        "gradient checkpointing",
        "8-bit optimizer",
        "LoRA",
        "QLoRA",
    ]
    assert site.changes[2].config.method is TrainMethod.LORA


def test_lora_reads_rank_targets_and_all_linear() -> None:
    text = LOAD + (
        "from peft import LoraConfig, get_peft_model\n"
        "TARGETS = ['q_proj', 'k_proj']\n"
        "a = get_peft_model(model, LoraConfig(target_modules=TARGETS))\n"
        "b = get_peft_model(model, LoraConfig(r=32, target_modules='all-linear'))\n"
        "c = get_peft_model(model, LoraConfig(r=rank))\n"
    )
    configs = [s.config for s in _sites(text, "lora")]
    assert configs[0] is not None and configs[0].lora_rank == 8  # peft's default r
    assert configs[0].lora_targets == ("q_proj", "k_proj")
    assert configs[1] is not None and configs[1].lora_targets == ("all-linear",)
    assert configs[2] is None


def _apply(text: str, edits: list[tuple[tuple[int, int], tuple[int, int], str]]) -> str:
    """Apply (start, end, new text) edits given as (line, column) pairs, last first."""
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    for start, end, new in sorted(edits, reverse=True):
        text = text[: offsets[start[0]] + start[1]] + new + text[offsets[end[0]] + end[1] :]
    return text


HAND_LOOP = LOAD + (
    "from torch.utils.data import DataLoader\n"
    "loader = DataLoader(data, batch_size=4)\n"
    "max_length = 256\n"
    "optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)\n"
    "for batch in loader:\n"
    "    loss = model(**batch).loss\n"
    "    loss.backward()\n"
)
TRAINER = LOAD + (
    "from transformers import Trainer, TrainingArguments\n"
    "args = TrainingArguments(output_dir='o', per_device_train_batch_size=2, "
    "gradient_checkpointing=False)\n"
    "trainer = Trainer(model=model, args=args)\n"
)


def test_every_change_states_its_configuration_once_applied() -> None:
    """Each quick fix's edits, applied to the text, make the analysis find exactly the
    configuration the fix promised (the over-budget titles are estimates of it)."""
    every = ["gradient checkpointing", "bf16 mixed precision", "8-bit optimizer", "LoRA", "QLoRA"]
    for text, kind in ((HAND_LOOP, "backward"), (TRAINER, "trainer")):
        [site] = _sites(text, kind)
        names = [c.name for c in site.changes]
        assert names == (every if kind == "trainer" else every[:1] + every[2:])
        analysis = analyze(text)
        for change in site.changes:
            at = (analysis.import_line, 0)
            edits = [(at, at, "".join(f"{line}\n" for line in change.imports))]
            edits += [
                ((e.span.start.line, e.span.start.col), (e.span.end.line, e.span.end.col), e.text)
                for e in change.edits
            ]
            [edited] = _sites(_apply(text, edits), kind)
            assert edited.config == change.config, change.name
            if change.load is not None:
                assert edited.load is not None
                assert edited.load.quantization == change.load.quantization == "int4"
