"""``memlens compress``'s layers table: identical layers share a row with their largest
error (as ``memlens estimate`` groups blocks); ``--per-layer`` shows every Linear."""

from __future__ import annotations

from rich.console import Console

from memlens.cli.compress import group_choices, render
from memlens.engine.compress_job import CompressionReport
from memlens.engine.weights.sensitivity import LayerChoice


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
