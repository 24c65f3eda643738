"""``TrainingArguments(deepspeed=…, fsdp=…)`` with ``memlens.training.devices`` set: the
training hint is the per-device peak under the stated sharding, through a real LSP client
(memlens/lsp_server/analysis/training_sharding.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_lsp
from pytest_lsp import LanguageClient

from memlens.profiler.training_config import Precision, Sharding, TrainingConfig
from memlens.units import format_bytes
from tests.lsp_server.conftest import BUDGET, SERVER
from tests.support.lsp_client import open_document, session
from tests.support.training_sources import model_estimate, peak_hint, training_hints

LLAMA = "meta-llama/Llama-2-7b-hf"


def _script(arguments: str) -> str:
    return (
        "import torch\nfrom transformers import AutoModelForCausalLM, Trainer, TrainingArguments\n"
        f'model = AutoModelForCausalLM.from_pretrained("{LLAMA}", dtype=torch.bfloat16)\n'
        f'args = TrainingArguments(output_dir="out", per_device_train_batch_size=2, {arguments})\n'
        "trainer = Trainer(model=model, args=args)\n"
    )


@pytest_lsp.fixture(config=SERVER)
async def eight_devices(lsp_client: LanguageClient, workspace: Path) -> AsyncIterator[None]:
    """A session whose scripts train on 8 data-parallel devices."""
    options = {"memoryBudget": BUDGET, "training": {"devices": 8}}
    async for _ in session(lsp_client, workspace, options):
        yield


@pytest.mark.parametrize(
    ("arguments", "sharding"),
    [
        ('deepspeed={"zero_optimization": {"stage": 3}}', Sharding.ZERO3),
        ('deepspeed={"zero_optimization": {"stage": 1}}', Sharding.ZERO1),
        ('fsdp="full_shard auto_wrap"', Sharding.FSDP),
        ('fsdp=["shard_grad_op"]', Sharding.ZERO2),
        ('deepspeed="ds_config.json"', Sharding.NONE),  # a file: its stage is not read
    ],
)
async def test_the_stated_sharding_gives_per_device_figures(
    eight_devices: LanguageClient, workspace: Path, arguments: str, sharding: Sharding
) -> None:
    text = _script(arguments)
    uri = open_document(eight_devices, workspace / f"sharded_{sharding}.py", text)
    config = TrainingConfig(
        precision=Precision.BF16_MIXED, batch=2, seq=512, devices=8, sharding=sharding
    )
    expected = model_estimate(LLAMA, config)
    assert await training_hints(eight_devices, uri, text) == [
        peak_hint(LLAMA, config, format_bytes(expected.peak_bytes))
    ]


async def test_one_device_keeps_the_unsharded_figure(
    client: LanguageClient, workspace: Path
) -> None:
    text = _script('deepspeed={"zero_optimization": {"stage": 3}}')
    uri = open_document(client, workspace / "one_device.py", text)
    config = TrainingConfig(precision=Precision.BF16_MIXED, batch=2, seq=512)
    expected = model_estimate(LLAMA, config)
    assert await training_hints(client, uri, text) == [
        peak_hint(LLAMA, config, format_bytes(expected.peak_bytes))
    ]
