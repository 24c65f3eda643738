"""Quality measures (memlens/engine/measure/quality.py)."""

from __future__ import annotations

import math

import pytest
import torch

from memlens.engine.measure.quality import mean_cosine, perplexity
from memlens.errors import UsageError
from tests.support.tiny_configs import build_model, tiny_config

IDS = torch.randint(3, 200, (64,), generator=torch.Generator().manual_seed(8))


def test_one_window_equals_transformers_loss() -> None:
    model = build_model(tiny_config("llama"))
    with torch.no_grad():
        loss = model(input_ids=IDS[None], labels=IDS[None]).loss
    assert perplexity(model, IDS, window=64) == pytest.approx(math.exp(float(loss)), rel=1e-4)


def test_windows_are_scored_separately_and_weighted_by_tokens() -> None:
    model = build_model(tiny_config("llama"))
    with torch.no_grad():
        first = model(input_ids=IDS[None, :40], labels=IDS[None, :40]).loss * 39
        second = model(input_ids=IDS[None, 40:], labels=IDS[None, 40:]).loss * 23
    expected = math.exp(float(first + second) / 62)
    assert perplexity(model, IDS, window=40) == pytest.approx(expected, rel=1e-4)


def test_too_little_text_is_refused() -> None:
    with pytest.raises(UsageError, match="two tokens"):
        perplexity(build_model(tiny_config("llama")), IDS[:1])


def test_mean_cosine() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert mean_cosine(a, a) == pytest.approx(1.0)
    assert mean_cosine(a, torch.tensor([[0.0, 1.0], [0.0, 1.0]])) == pytest.approx(0.5)
