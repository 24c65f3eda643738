"""The committed byte-level fixture model loads, predicts held-out Python far better than
uniform, writes Python-looking text, and its byte tokenizer round-trips any text."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from benchmarks.fixtures.byte_llama_model import (
    FIXTURE_DIR,
    VOCAB_SIZE,
    FixtureInfo,
    decode,
    encode,
    heldout_text,
    load_byte_llama,
)
from memlens.errors import ConfigError, ModelNotFoundError

EVAL_WINDOWS = 16
"""Held-out windows scored by the perplexity test (16 × 512 bytes keeps it to seconds)."""
PERPLEXITY_CEILING = 8.0
"""Per byte; uniform guessing over 256 byte values scores 256."""


@pytest.fixture(scope="module")
def byte_llama() -> Iterator[tuple[nn.Module, FixtureInfo]]:
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    yield load_byte_llama()
    torch.set_num_threads(threads)


def test_heldout_perplexity_is_far_below_uniform(
    byte_llama: tuple[nn.Module, FixtureInfo],
) -> None:
    model, info = byte_llama
    ids = encode(heldout_text())
    window = info.eval_window
    windows = ids[: EVAL_WINDOWS * window].view(EVAL_WINDOWS, window)  # (W, T)
    with torch.no_grad():
        logits = model(input_ids=windows[:, :-1]).logits  # (W, T - 1, V)
    nll = nn.functional.cross_entropy(logits.reshape(-1, VOCAB_SIZE), windows[:, 1:].reshape(-1))
    perplexity = math.exp(float(nll))
    assert perplexity < PERPLEXITY_CEILING
    assert info.heldout_perplexity < PERPLEXITY_CEILING
    assert info.heldout_bits_per_byte == pytest.approx(math.log2(info.heldout_perplexity), 1e-2)


def test_shape_is_what_the_engine_tests_rely_on(
    byte_llama: tuple[nn.Module, FixtureInfo],
) -> None:
    model, info = byte_llama
    config: Any = model.config  # transformers is untyped; nn.Module says Tensor | Module
    assert config.model_type == "llama"
    assert config.vocab_size == VOCAB_SIZE
    assert config.num_key_value_heads < config.num_attention_heads  # GQA
    assert not config.tie_word_embeddings
    assert sum(p.numel() for p in model.parameters()) == info.parameters
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_greedy_decoding_writes_printable_text(
    byte_llama: tuple[nn.Module, FixtureInfo],
) -> None:
    model, _ = byte_llama
    ids = encode("import os\n\n\ndef read_config(path):\n    ")[None, :]  # (1, T)
    prompt_len = ids.shape[1]
    with torch.no_grad():
        for _ in range(48):
            logits = model(input_ids=ids).logits  # (1, T, V)
            ids = torch.cat([ids, logits[:, -1:].argmax(-1)], dim=1)  # (1, T + 1)
    new = ids[0, prompt_len:].tolist()
    printable = sum(32 <= b < 127 or b in (9, 10) for b in new)
    assert printable >= 0.9 * len(new), decode(new)


def test_bf16_load() -> None:
    model, _ = load_byte_llama(dtype=torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())


@pytest.mark.parametrize(
    "text", ["", "def f(x):\n    return x\n", "naïve café — 日本語 🐍\r\n\t\x00", "\ufffd"]
)
def test_encode_decode_round_trip(text: str) -> None:
    ids = encode(text)
    assert ids.dtype == torch.long
    assert ids.shape == (len(text.encode("utf-8")),)
    assert decode(ids) == text
    assert decode(ids[None, :]) == text
    assert decode(ids.tolist()) == text


def test_decode_replaces_invalid_utf8_and_rejects_non_bytes() -> None:
    assert decode([0x66, 0xFF, 0x6F]) == "f\ufffdo"
    with pytest.raises(ValueError, match=r"\[0, 256\)"):
        decode([256])
    with pytest.raises(ValueError, match="shape"):
        decode(torch.zeros(2, 3, dtype=torch.long))


def test_missing_fixture_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"train_byte_llama\.py"):
        load_byte_llama(folder=tmp_path)
    with pytest.raises(ModelNotFoundError):
        heldout_text(folder=tmp_path)


def test_damaged_weights_are_a_config_error(tmp_path: Path) -> None:
    for name in ("config.json", "metrics.json"):
        (tmp_path / name).write_bytes((FIXTURE_DIR / name).read_bytes())
    truncated = (FIXTURE_DIR / "model.safetensors").read_bytes()[:100]
    (tmp_path / "model.safetensors").write_bytes(truncated)
    with pytest.raises(ConfigError):
        load_byte_llama(folder=tmp_path)
