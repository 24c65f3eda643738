"""``memlens compress``'s layers table: identical layers share a row with their largest
error (as ``memlens estimate`` groups blocks); ``--per-layer`` shows every Linear. And on
the real chat model (fixture 3): the compressed copy keeps the chat template."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from memlens.cli.compress import group_choices, render
from memlens.engine.compress_job import CompressionReport
from memlens.engine.weights.sensitivity import LayerChoice
from tests.support.smollm2 import CAPITAL_QUESTION


def _layers() -> tuple[LayerChoice, ...]:
    layers = []
    for index in range(30):
        error = 0.009 if index == 7 else 0.004
        layers.append(LayerChoice(f"model.layers.{index}.mlp.down_proj", "int8", 400, 200, error))
        scheme = "int4:g64" if index < 29 else "int8"  # the last one fell back
        layers.append(LayerChoice(f"model.layers.{index}.mlp.up_proj", scheme, 400, 100, 0.02))
    layers.append(LayerChoice("lm_head", "int8", 800, 400, None))
    return tuple(layers)


def test_identical_layers_share_a_row_with_their_largest_error() -> None:
    rows = group_choices(_layers())
    assert [(row.label, row.count) for row in rows] == [
        ("model.layers.0–29 ×30 · mlp.down_proj", 30),
        ("model.layers.0–28 ×29 · mlp.up_proj", 29),
        ("model.layers.29.mlp.up_proj", 1),
        ("lm_head", 1),
    ]
    assert rows[0].max_error == 0.009
    assert rows[3].max_error is None  # never ran on the calibration text


def _rendered(per_layer: bool) -> str:
    report = CompressionReport(
        model="m", config={}, layers=_layers(), weight_bytes_before=1, weight_bytes_after=1
    )
    console = Console(record=True, width=120)
    render(report, console, per_layer=per_layer)
    return console.export_text()


def test_the_table_is_grouped_by_default_and_full_with_per_layer() -> None:
    grouped = _rendered(per_layer=False)
    assert "model.layers.0–29 ×30 · mlp.down_proj" in grouped
    assert "11.7 KiB" in grouped and "0.90%" in grouped  # 30 × 400 B before; max error
    assert "model.layers.3.mlp.down_proj" not in grouped
    full = _rendered(per_layer=True)
    assert "model.layers.3.mlp.down_proj" in full and "×30" not in full


def test_a_compressed_real_chat_model_keeps_its_template_and_answers(
    smollm2_dir: Path, tmp_path: Path
) -> None:
    """Regression (issue 14): the output lacked chat_template.jinja and
    generation_config.json, so chat fell back to a transcript and rambled."""
    text = tmp_path / "text.txt"
    text.write_text("The capital of France is Paris. The capital of Italy is Rome.\n" * 8)
    out = tmp_path / "int8"
    options = ["--no-speed", "--calibration", str(text), "--eval-text", str(text), "--out"]
    compressed = subprocess.run(
        [sys.executable, "-m", "memlens", "compress", str(smollm2_dir), *options, str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert compressed.returncode == 0, compressed.stderr
    assert "model.layers.0–29 ×30 · mlp.down_proj" in compressed.stdout
    for name in ("chat_template.jinja", "generation_config.json", "tokenizer_config.json"):
        assert (out / name).read_bytes() == (smollm2_dir / name).read_bytes()
    chat = subprocess.run(
        [sys.executable, "-m", "memlens", "chat", str(out), "--json"],
        input=CAPITAL_QUESTION + "\n",
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert chat.returncode == 0, chat.stderr
    turn = json.loads(chat.stdout.splitlines()[0])
    assert "Paris" in turn["reply"]
    assert turn["prompt_tokens"] > len(CAPITAL_QUESTION.split())  # the template's turns
