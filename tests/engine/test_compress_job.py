"""The compress job (memlens/engine/compress_job.py): its report's layers and bytes are
those of the model it compressed, its figures are measured, and the checkpoint it writes
loads back to the bytes it reports."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from memlens.engine.compress_job import CompressJob, run_compress
from memlens.engine.loading import load_model
from memlens.engine.weights.config import Int8WeightConfig
from memlens.profiler.measure import module_bytes

TEXT = "def add(a, b):\n    return a + b\n" * 40


def test_the_report_matches_the_model_it_compressed(byte_model_dir: Path, tmp_path: Path) -> None:
    original = load_model(byte_model_dir, torch.float32).model
    linears = {
        name: module for name, module in original.named_modules() if isinstance(module, nn.Linear)
    }
    job = CompressJob(
        source=byte_model_dir,
        weights=Int8WeightConfig(skip=("lm_head",)),
        out=tmp_path / "out",
        calibration=TEXT,
        evaluation=TEXT,
        calibration_tokens=64,
        evaluation_tokens=256,
        measure_speed=False,
        dtype=torch.float32,
    )
    progress: list[float] = []
    messages: list[str] = []

    def on_progress(message: str, percent: float) -> None:
        messages.append(message)
        progress.append(percent)

    report = run_compress(job, on_progress)
    assert progress == sorted(progress) and progress[-1] == 100
    # the measuring phases count their steps: 256 tokens in windows of 256 → 1 of 1
    for phase in ("Measuring the uncompressed model", "Measuring the compressed model"):
        counted = [m for m in messages if m.startswith(f"{phase}: perplexity")]
        assert counted and counted[-1].endswith("1 of 1"), messages
    assert report.weight_bytes_before == module_bytes(original)
    compressed = {layer.name: layer for layer in report.layers if layer.scheme == "int8"}
    assert set(compressed) == set(linears) - {"lm_head"}
    for name, layer in compressed.items():
        weight = linears[name].weight
        assert layer.bytes_before == weight.numel() * 4  # float32 weights
        assert layer.bytes_after == weight.numel() + weight.shape[0] * 2  # int8 + bf16 scales
        assert layer.rel_error is not None and 0 <= layer.rel_error < 0.05
    saved = sum(layer.bytes_before - layer.bytes_after for layer in report.layers)
    assert report.weight_bytes_before - report.weight_bytes_after == saved
    assert report.ppl_before is not None and report.ppl_after is not None
    assert math.isfinite(report.ppl_before) and report.ppl_before > 0
    assert math.isfinite(report.ppl_after) and report.ppl_after > 0
    assert report.tokens_per_s_before is None and report.tokens_per_s_after is None
    data = report.to_json()
    assert data["kind"] == "compress" and data["config"]["scheme"] == "int8"
    assert data["ppl_delta"] == report.ppl_after / report.ppl_before - 1
    reloaded = load_model(tmp_path / "out", torch.float32)
    assert reloaded.compressed == job.weights
    assert module_bytes(reloaded.model) == report.weight_bytes_after
