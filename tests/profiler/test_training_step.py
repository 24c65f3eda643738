"""The analytic training estimate's step peak is within ±15% of one measured steady-state
step (allocation events on the CPU) on four architectures (the trained byte-level Llama
fixture, GPT-2-, Llama- and Qwen-shaped configs), full fine-tuning, LoRA and gradient
checkpointing, with AdamW and SGD; the measured blocks (weights, gradients, optimizer
states) agree exactly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from benchmarks.fixtures.byte_llama_model import fixture_dir, load_byte_llama
from memlens.errors import UsageError
from memlens.profiler.training import training_estimate
from memlens.profiler.training_config import training_config
from memlens.profiler.training_step import measure_training_step
from tests.support.tiny_configs import build_model, tiny_config

pytest.importorskip("peft")

# (batch, seq) sized so saved activations are a large share of the step's peak.
SHAPES = {"byte-llama": (2, 128), "gpt2": (4, 96), "llama": (4, 128), "qwen2": (4, 128)}
MODES = {
    "full": {"train": "full"},
    "lora": {"train": "lora:r8"},
    "full-checkpointed": {"train": "full", "gradient_checkpointing": True},
    "lora-checkpointed": {"train": "lora:r4", "gradient_checkpointing": True},
}


def _model_and_config(name: str) -> tuple[Any, dict[str, Any]]:
    if name == "byte-llama":
        model, _ = load_byte_llama()
        return model, json.loads((fixture_dir() / "config.json").read_text())
    config = tiny_config({"qwen2": "qwen2-qkv-bias-tied"}.get(name, name))
    return build_model(config), config


# SGD keeps no state, so its peak differs from AdamW's by the optimizer step; LoRA's
# optimizer states are too small to matter, so SGD runs with full fine-tuning only.
RUNS = [(mode, "adamw") for mode in sorted(MODES)] + [
    ("full", "sgd"),
    ("full-checkpointed", "sgd"),
]


@pytest.mark.parametrize(("mode", "optimizer"), RUNS)
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_step_peak_within_15_percent(name: str, mode: str, optimizer: str) -> None:
    model, config = _model_and_config(name)
    batch, seq = SHAPES[name]
    train = training_config(**MODES[mode], optimizer=optimizer, batch=batch, seq=seq)
    measured = measure_training_step(model, train, config["vocab_size"])
    estimate = training_estimate(config, name, train)
    assert measured.trainable_params == estimate.trainable_params
    assert measured.gradient_bytes == estimate.gradient_bytes
    assert measured.optimizer_bytes == estimate.optimizer_bytes
    transient = measured.peak_bytes - measured.resident_bytes
    assert transient > 0.3 * measured.peak_bytes, "model states would dominate"
    assert estimate.peak_bytes == pytest.approx(measured.peak_bytes, rel=0.15)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"train": "qlora:r8"}, "bitsandbytes"),
        ({"train": "full", "precision": "bf16-mixed"}, "estimated, not measured"),
        ({"train": "full", "optimizer": "adamw8bit"}, "bitsandbytes"),
        ({"train": "lora:r4", "lora_targets": "no_such_proj"}, "no_such_proj"),
    ],
)
def test_unmeasurable_configs_raise_usage_errors(options: dict[str, Any], message: str) -> None:
    model, _ = _model_and_config("llama")
    with pytest.raises(UsageError, match=message):
        measure_training_step(model, training_config(**options, batch=1, seq=8), 320)
