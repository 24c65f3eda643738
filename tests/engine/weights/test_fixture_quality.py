"""Compression on the trained byte-level fixture (benchmarks/fixtures/byte_llama): the
quality goals of the engine, measured on held-out Python source."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from benchmarks.fixtures.byte_llama_model import encode, heldout_text, load_byte_llama
from memlens.engine import (
    AutoWeightConfig,
    Int4WeightConfig,
    Int8WeightConfig,
    WeightConfig,
    compress_,
    generate,
    load_compressed,
    plan_auto,
    save_compressed,
)
from memlens.engine.measure.quality import perplexity
from memlens.profiler.measure import module_bytes

EVAL_BYTES = 8192
PROMPTS = 8
PROMPT_BYTES = 48
NEW_TOKENS = 32


@pytest.fixture(scope="module")
def reference() -> torch.nn.Module:
    model, _ = load_byte_llama(torch.float32)
    return model


@pytest.fixture(scope="module")
def heldout() -> torch.Tensor:
    return encode(heldout_text())


@pytest.fixture(scope="module")
def reference_ppl(reference: torch.nn.Module, heldout: torch.Tensor) -> float:
    return perplexity(reference, heldout[:EVAL_BYTES], 256)


def _compressed(reference: torch.nn.Module, config: WeightConfig) -> torch.nn.Module:
    return compress_(copy.deepcopy(reference), config)


@pytest.mark.parametrize(
    ("config", "limit"),
    [(Int8WeightConfig(), 0.005), (Int4WeightConfig(group_size=64), 0.05)],
    ids=["int8", "int4-g64"],
)
def test_perplexity_change_is_within_the_goal(
    reference: torch.nn.Module,
    heldout: torch.Tensor,
    reference_ppl: float,
    config: WeightConfig,
    limit: float,
) -> None:
    assert reference_ppl < 10  # far below the 256 of a uniform guess
    after = perplexity(_compressed(reference, config), heldout[:EVAL_BYTES], 256)
    assert abs(after / reference_ppl - 1) <= limit


def test_int8_greedy_decoding_agrees_with_fp32(
    reference: torch.nn.Module, heldout: torch.Tensor
) -> None:
    """≥ 90% of the first 32 greedy tokens agree over a fixed set of held-out prompts."""
    int8 = _compressed(reference, Int8WeightConfig())
    stride = len(heldout) // PROMPTS
    prompts = torch.stack([heldout[i * stride : i * stride + PROMPT_BYTES] for i in range(PROMPTS)])
    expected = generate(reference, prompts, NEW_TOKENS)[:, PROMPT_BYTES:]
    actual = generate(int8, prompts, NEW_TOKENS)[:, PROMPT_BYTES:]
    agreement = float((expected == actual).float().mean())
    assert agreement >= 0.9


def test_int8_next_byte_predictions_agree_with_fp32_on_held_out_text(
    reference: torch.nn.Module, heldout: torch.Tensor
) -> None:
    """Greedy continuations of this small model soon repeat one byte, so agreement is
    also checked where it is hard: the argmax at every position of held-out text."""
    int8 = _compressed(reference, Int8WeightConfig())
    windows = heldout[: 8 * 256].reshape(8, 256)  # (B, T)
    with torch.no_grad():
        expected = reference(input_ids=windows).logits.argmax(-1)
        actual = int8(input_ids=windows).logits.argmax(-1)
    assert float((expected == actual).float().mean()) >= 0.97


def test_auto_plan_meets_its_target_and_saves_bytes(
    reference: torch.nn.Module, heldout: torch.Tensor, reference_ppl: float
) -> None:
    calibration = heldout[-1024:][None]
    plan = plan_auto(copy.deepcopy(reference), AutoWeightConfig(max_error=0.05), calibration)
    assert all(layer.rel_error <= 0.05 for layer in plan.layers if layer.name != "lm_head")
    compressed = compress_(copy.deepcopy(reference).to(torch.bfloat16), plan.config)
    bf16 = module_bytes(copy.deepcopy(reference).to(torch.bfloat16))
    assert module_bytes(compressed) < 0.8 * bf16
    after = perplexity(compressed, heldout[:EVAL_BYTES], 256)
    assert after / reference_ppl - 1 < 0.05


def test_a_saved_fixture_checkpoint_loads_bit_exact(
    reference: torch.nn.Module, heldout: torch.Tensor, tmp_path: Path
) -> None:
    config = Int4WeightConfig(group_size=32)
    model = _compressed(reference, config)
    folder = save_compressed(model, config, tmp_path)
    ids = heldout[:200][None]
    with torch.no_grad():
        assert torch.equal(
            load_compressed(folder)(input_ids=ids).logits, model(input_ids=ids).logits
        )
