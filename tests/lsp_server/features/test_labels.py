"""The texts every figure carries: each says what it counts (issue 17)."""

from __future__ import annotations

import dataclasses

import pytest

from memlens.lsp_server.features.labels import (
    context_label,
    load_label,
    serving_label,
    weights_label,
)
from memlens.profiler.estimate import analytic_estimate
from memlens.profiler.tensors import StorageDtype
from memlens.units import format_bytes
from tests.support.tiny_configs import tiny_config


@pytest.mark.parametrize(
    ("tokens", "text"),
    [(1, "1"), (512, "512"), (1023, "1023"), (1024, "1k"), (1536, "1.5k"), (4096, "4k")],
)
def test_context_label(tokens: int, text: str) -> None:
    assert context_label(tokens) == text


def test_the_hint_counts_weights_and_the_diagnostic_counts_serving() -> None:
    [estimate] = analytic_estimate(
        tiny_config("llama"), "tiny-llama", [StorageDtype.FP32], context=4096
    )
    hint = load_label(estimate)
    assert hint.startswith(f"weights ≈ {format_bytes(estimate.weight_bytes)} fp32 · KV ")
    assert hint.endswith("/tok")
    weights = format_bytes(estimate.weight_bytes)
    assert weights_label(estimate.weight_bytes) == f"weights ≈ {weights}"
    assert serving_label(estimate) == f"serving ≈ {format_bytes(estimate.total_bytes)} at 4k ctx"
    batched = dataclasses.replace(estimate, batch=8)
    assert serving_label(batched).endswith(" at 4k ctx × batch 8")
