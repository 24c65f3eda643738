"""``memlens estimate`` through the real entry point: tables, JSON, and clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.tiny_configs import NEOX_CONFIG


def memlens(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "memlens", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
    )


def estimates(*args: str) -> list[dict[str, Any]]:
    result = memlens("estimate", *args, "--json")
    assert result.returncode == 0, result.stderr
    data: list[dict[str, Any]] = json.loads(result.stdout)
    return data


def test_help_lists_subcommands() -> None:
    result = memlens("--help")
    assert result.returncode == 0
    assert "estimate" in result.stdout


def test_table_groups_identical_layers_and_shows_every_dtype() -> None:
    result = memlens("estimate", "meta-llama/Llama-2-7b-hf")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "model.layers.0–31 ×32" in out
    for text in ("fp32", "bf16", "int8", "int4", "25.1 GiB", "12.6 GiB", "lm_head"):
        assert text in out


def test_json_is_the_memory_estimate_contract() -> None:
    bf16, int4 = estimates(
        "meta-llama/Llama-2-7b-hf", "--dtype", "bf16,int4", "--context", "2048", "--batch", "2"
    )
    assert (bf16["dtype"], int4["dtype"]) == ("bf16", "int4")
    for e in (bf16, int4):
        assert e["source"] == "analytic" and e["exact"] is True
        assert e["params"] == 6_738_415_616
        assert e["total_bytes"] == e["weight_bytes"] + e["kv_cache_bytes"] + e["activations_bytes"]
        assert e["kv_cache_bytes"] == e["kv_bytes_per_token"] * 2048 * 2
        assert len(e["layers"]) == 35
        assert {
            "name",
            "kind",
            "params",
            "bytes_by_dtype",
            "kv_bytes_per_token",
            "activation_bytes",
        } <= set(e["layers"][1])
        assert e["fits"] and e["fits"][0]["device"] == "cpu"
    assert bf16["weight_bytes"] == 6_738_415_616 * 2
    assert int4["weight_bytes"] < bf16["weight_bytes"] / 3


def test_exact_estimator_agrees_with_analytic() -> None:
    [analytic] = estimates("gpt2", "--dtype", "fp32")
    [exact] = estimates("gpt2", "--dtype", "fp32", "--estimator", "exact")
    assert exact["source"] == "meta"
    assert exact["params"] == analytic["params"] == 124_439_808
    assert exact["weight_bytes"] == analytic["weight_bytes"]


def test_unsupported_family_falls_back_to_meta_with_a_note(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(NEOX_CONFIG))
    [estimate] = estimates(str(tmp_path), "--dtype", "fp32")
    assert estimate["source"] == "meta"
    assert estimate["exact"] is False
    assert any("no analytic formulas" in note for note in estimate["notes"])
    assert estimate["params"] > 0
    result = memlens("estimate", str(tmp_path), "--estimator", "analytic")
    assert result.returncode == 5
    assert "gpt_neox" in result.stderr


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["someone/not-a-model"], 3, "config.json"),
        (["./missing-dir"], 3, "no such file"),
        (["--context", "-5", "gpt2"], 2, "--context"),
        (["--context", "0", "gpt2"], 2, "--context"),
        (["--context", "1000000000", "gpt2"], 2, "--context"),
        (["--batch", "0", "gpt2"], 2, "--batch"),
        (["--dtype", "int3", "gpt2"], 2, "unknown dtype"),
        (["--group-size", "48", "gpt2"], 2, "invalid choice"),
        (["--context", "many", "gpt2"], 2, "invalid int"),
    ],
)
def test_bad_input_gives_one_clear_line_and_exit_code(
    args: list[str], code: int, message: str
) -> None:
    result = memlens("estimate", *args)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_corrupt_truncated_and_missing_configs(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    _write(truncated, "config.json", '{"model_type": "llama", "hidden_')
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    cases = [
        (str(truncated), 4, "not valid JSON"),
        (str(empty_dir), 3, "has no config.json"),
        (_write(tmp_path, "bad.json", '{"model_type": "llama"}'), 4, "required field"),
    ]
    for model, code, message in cases:
        result = memlens("estimate", model)
        assert (result.returncode, "Traceback" in result.stderr) == (code, False), result.stderr
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
