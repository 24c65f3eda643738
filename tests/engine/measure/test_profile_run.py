"""The measured profile run (memlens/engine/measure/profile_run.py): the bytes it reports
are the bytes of the tensors the model and its KV cache hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from memlens.engine.kv.config import parse_kv
from memlens.engine.loading import load_model
from memlens.engine.measure.profile_run import profile_run
from tests.support.byte_model import BYTE_MODEL_CONFIG

BATCH, PROMPT, NEW = 2, 24, 4
KV_HEADS = BYTE_MODEL_CONFIG["num_key_value_heads"]
HEAD_DIM = BYTE_MODEL_CONFIG["hidden_size"] // BYTE_MODEL_CONFIG["num_attention_heads"]


def _tensor_bytes(module: nn.Module) -> int:
    """Bytes of every parameter and buffer, each storage counted once."""
    tensors = {t.data_ptr(): t for t in (*module.parameters(), *module.buffers())}
    return sum(t.numel() * t.element_size() for t in tensors.values())


@pytest.fixture(scope="module")
def loaded(byte_model_dir: Path) -> Any:
    return load_model(byte_model_dir, torch.float32)


def test_bytes_and_parameters_are_those_of_the_model_and_its_blocks(loaded: Any) -> None:
    progress: list[float] = []
    run = profile_run(loaded, BATCH, PROMPT, NEW, lambda _, percent: progress.append(percent))
    model = loaded.model
    assert run.weights_bytes == _tensor_bytes(model)
    assert run.peak_bytes >= run.weights_bytes
    assert (run.batch, run.prompt_tokens, run.new_tokens) == (BATCH, PROMPT, NEW)
    assert run.kv_cache is None and progress == sorted(progress)
    for layer in run.layers:
        block = model.get_submodule(layer.name)
        assert layer.bytes == _tensor_bytes(block), layer.name
        assert layer.params == sum(p.numel() for p in block.parameters()), layer.name
    decoders = [layer for layer in run.layers if layer.name.split(".")[-1].isdigit()]
    assert len(decoders) == BYTE_MODEL_CONFIG["num_hidden_layers"]
    per_token = BATCH * KV_HEADS * HEAD_DIM * 2 * 4  # keys and values in float32
    for layer in decoders:  # the cache holds every token but the last one generated
        assert layer.kv_cache_bytes == (PROMPT + NEW - 1) * per_token, layer.name
    assert all(layer.kv_cache_bytes == 0 for layer in run.layers if layer not in decoders)
    assert run.to_json()["layers"][0]["name"] == run.layers[0].name


def test_a_compressed_cache_reports_its_own_exact_bytes(loaded: Any) -> None:
    full = profile_run(loaded, BATCH, PROMPT, NEW, kv=parse_kv("fp"))
    int8 = profile_run(loaded, BATCH, PROMPT, NEW, kv=parse_kv("int8:g8:r0"))
    assert (full.kv_cache, int8.kv_cache) == ("fp", "int8:g8:r0")
    per_token = BATCH * KV_HEADS * HEAD_DIM * 2 * 4
    tokens = PROMPT + NEW - 1
    decoders = [layer for layer in int8.layers if layer.name.split(".")[-1].isdigit()]
    for plain, quantized in zip(
        (layer for layer in full.layers if layer.name.split(".")[-1].isdigit()),
        decoders,
        strict=True,
    ):
        assert plain.kv_cache_bytes == tokens * per_token
        quantized_tokens = tokens // 8 * 8  # whole groups of 8 tokens are stored in int8
        values = quantized_tokens * BATCH * KV_HEADS * HEAD_DIM * 2  # one byte each
        scales = 2 * 2 * 2 * BATCH * KV_HEADS * HEAD_DIM * quantized_tokens // 8  # fp16 pairs
        residual = (tokens - quantized_tokens) * per_token
        assert quantized.kv_cache_bytes == values + scales + residual


def test_decode_speed_is_timed_without_the_profilers_hooks(
    loaded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17: "3.1 tokens/s" under the hooks where `memlens generate` gave 16.9."""
    import memlens.engine.measure.profile_run as profile_module

    hooks_per_run: list[int] = []
    real_stream = profile_module.stream

    def counting_stream(model: nn.Module, *args: Any, **kwargs: Any) -> Any:
        hooks_per_run.append(sum(len(m._forward_hooks) for m in model.modules()))
        return real_stream(model, *args, **kwargs)

    monkeypatch.setattr(profile_module, "stream", counting_stream)
    run = profile_run(loaded, 1, PROMPT, NEW)
    assert len(hooks_per_run) == 2
    assert hooks_per_run[0] > 0  # the measured run reads every block's output
    assert hooks_per_run[1] == 0  # the timed one runs the bare model
    assert run.decode_tokens_per_s is not None and run.decode_tokens_per_s > 0
