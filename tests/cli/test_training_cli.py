"""``memlens estimate --train`` and ``memlens profile --train`` through the real entry point
(memlens/cli/training_options.py): the table, the versioned JSON, and one clear error line
with its exit code for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from benchmarks.fixtures.byte_llama_model import fixture_dir


def memlens(*args: str, columns: str | None = "160") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run(
        [sys.executable, "-m", "memlens", *args],
        capture_output=True,
        text=True,
        env=env if columns is None else {**env, "COLUMNS": columns},
    )


def test_estimate_train_json_is_the_versioned_training_estimate() -> None:
    result = memlens(
        "estimate", "meta-llama/Llama-2-7b-hf", "--offline", "--train", "lora:r8",
        "--lora-targets", "q_proj,v_proj", "--batch", "2", "--seq", "1024", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["kind"], data["version"]) == ("training", 1)
    assert data["config"] == {
        "method": "lora", "lora_rank": 8, "lora_targets": ["q_proj", "v_proj"],
        "optimizer": "adamw", "precision": "fp32", "gradient_checkpointing": False,
        "batch": 2, "seq": 1024, "devices": 1, "sharding": "none", "version": 1,
    }  # fmt: skip
    assert data["trainable_params"] == 4_194_304
    assert data["peak_bytes"] > data["model_state_bytes"] + data["activation_bytes"] // 2
    assert {fit["device"] for fit in data["fits"]} >= {"cpu"}
    layer = data["blocks"][1]
    assert layer["name"] == "model.layers.0" and layer["adapter_params"] == 4_194_304 // 32


def test_estimate_train_table_shows_blocks_and_the_peak() -> None:
    result = memlens(
        "estimate", "meta-llama/Llama-2-7b-hf", "--offline", "--train", "full",
        "--precision", "bf16-mixed", "--devices", "8", "--sharding", "zero3",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "model.layers.0–31 ×32" in result.stdout
    assert "per device (8 × zero3)" in result.stdout
    assert "step peak" in result.stdout


def test_piped_table_keeps_every_column_whole() -> None:
    """Regression: piped to a file, rich assumed 80 columns and cut every header and figure
    of the nine-column training table to a few characters (``traina…``, ``22.3 G…``)."""
    result = memlens(
        "estimate", "mistralai/Mixtral-8x7B-v0.1", "--offline", "--train", "qlora:r16",
        "--batch", "1", "--seq", "512", columns=None,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if "trainable" in line)
    assert header.split() == [
        "block", "trainable", "weights", "adapters", "grads", "optim", "master", "saved",
        "saved", "(ckpt)",
    ]  # fmt: skip
    assert "…" not in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--train", "lora:r0"], "the LoRA rank must be an integer between 1"),
        (["--train", "lora:r-4"], "the LoRA rank must be an integer between 1"),
        (["--train", "lora", "--lora-targets", "attn"], "'attn' matches no linear module"),
        (["--train", "full", "--optimizer", "adam"], "unknown optimizer 'adam'"),
        (["--train", "full", "--batch", "0"], "--batch must be an integer between 1"),
        (["--train", "full", "--seq", "0"], "--seq must be an integer between 1"),
        (["--train", "sparse"], "unknown training method 'sparse'"),
    ],
)
def test_bad_training_input_gives_one_error_line_and_exit_code_2(
    args: list[str], message: str
) -> None:
    result = memlens("estimate", "meta-llama/Llama-2-7b-hf", "--offline", *args)
    assert result.returncode == 2
    assert result.stderr.startswith("memlens: error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr


def test_profile_train_measures_the_fixture() -> None:
    result = memlens(
        "profile", str(fixture_dir()), "--train", "full", "--optimizer", "sgd",
        "--batch", "1", "--seq", "64", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["kind"] == "training-profile"
    estimate, measured = report["estimate"], report["measured"]
    assert measured["gradient_bytes"] == estimate["gradient_bytes"]
    assert measured["peak_bytes"] == pytest.approx(estimate["peak_bytes"], rel=0.15)


def test_profile_train_refuses_what_a_cpu_step_cannot_measure() -> None:
    result = memlens("profile", str(fixture_dir()), "--train", "qlora", "--seq", "8")
    assert result.returncode == 2
    assert "memlens: error:" in result.stderr and "bitsandbytes" in result.stderr
