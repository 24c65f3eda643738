"""Display grouping of identical layers (memlens.profiler.layer_groups.py)."""

from __future__ import annotations

from memlens.profiler.estimate import analytic_estimate
from memlens.profiler.layer_groups import format_indices, group_layers
from memlens.profiler.tensors import StorageDtype
from tests.support.tiny_configs import tiny_config


def test_format_indices() -> None:
    assert format_indices([3]) == "3"
    assert format_indices(list(range(32))) == "0–31"
    assert format_indices(list(range(0, 42, 2))) == "0,2,…,40"
    assert format_indices([1, 4, 5]) == "1,4,5"


def test_identical_layers_collapse_and_sliding_layers_stay_apart() -> None:
    [llama] = analytic_estimate(tiny_config("llama"), "t", [StorageDtype.BF16])
    labels = [(g.label, g.count) for g in group_layers(llama.layers)]
    assert labels == [
        ("model.embed_tokens", 1),
        ("model.layers.0–2", 3),
        ("model.norm", 1),
        ("lm_head", 1),
    ]
    [gemma2] = analytic_estimate(tiny_config("gemma2-alternating"), "t", [StorageDtype.BF16])
    groups = group_layers(gemma2.layers)
    assert [(g.label, g.count, g.layer.sliding_window) for g in groups[1:3]] == [
        ("model.layers.0,2", 2, 8),
        ("model.layers.1", 1, None),
    ]
