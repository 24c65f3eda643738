"""``memlens train`` through the CLI's ``main``: a LoRA + QAT run whose checkpoint
``memlens generate`` loads, and the exit codes of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memlens.cli.main import main
from tests.support.byte_model import write_byte_model
from tests.support.train_text import write_train_text

QUICK = ("--steps", "2", "--batch-size", "2", "--seq-len", "32")


def test_lora_qat_run_reports_json_and_generates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, data, out = write_byte_model(tmp_path / "m"), write_train_text(tmp_path), tmp_path / "o"
    argv = ["train", str(model), "--data", str(data), "--lora", "r4", "--qat", "int4:g32"]
    assert main([*argv, *QUICK, "--optimizer", "adamw8bit", "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kind"] == "train" and report["steps"] == 2
    assert report["saved_as"] == "memlens" and report["out"] == str(out)
    assert 0 < report["trainable_parameters"] < report["parameters"]
    assert report["optimizer_bytes"] > 0 and report["peak_step_bytes"] > 0
    gen = ["generate", str(out), "--prompt", "def f", "--max-new-tokens", "4", "--json"]
    assert main(gen) == 0
    assert json.loads(capsys.readouterr().out)["new_tokens"] == 4


def test_the_final_report_is_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, data = write_byte_model(tmp_path / "m"), write_train_text(tmp_path)
    assert main(["train", str(model), "--data", str(data), "--prune", "0.5", *QUICK]) == 0
    shown = capsys.readouterr().out
    assert "eval loss" in shown and "pruning: gates expect" in shown


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (("--prune", "1.5"), 2, "(0, 1)"),
        (("--lora", "rx"), 2, "--lora"),
        (("--qat", "lowrank"), 2, "int8 or int4"),
        (("--optimizer", "sgd"), 2, "--optimizer"),
        (("--optimizer", "adamw-offload"), 2, "not on a GPU"),
        (("--steps", "0"), 2, "--steps"),
    ],
)
def test_bad_options_exit_with_usage_errors(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: tuple[str, ...],
    code: int,
    message: str,
) -> None:
    model, data = write_byte_model(tmp_path / "m"), write_train_text(tmp_path)
    assert main(["train", str(model), "--data", str(data), *QUICK, *extra]) == code
    assert message in capsys.readouterr().err


def test_empty_data_and_a_used_out_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = write_byte_model(tmp_path / "m")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert main(["train", str(model), "--data", str(empty), *QUICK]) == 2
    assert "empty" in capsys.readouterr().err
    out = tmp_path / "out"
    out.mkdir()
    (out / "weights.bin").write_bytes(b"earlier")
    data = write_train_text(tmp_path)
    assert main(["train", str(model), "--data", str(data), "--out", str(out), *QUICK]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (out / "weights.bin").read_bytes() == b"earlier"
