"""The static-cache decoder (memlens/engine/static_decoding.py), run eagerly on the CPU:
the bucketing of prefill lengths, and its cache bookkeeping (padded prefills given back,
a loaded history, one-token steps) predicting exactly what a growing ``DynamicCache``
does on the trained fixture. The compiled CUDA-graph step runs where a GPU is lent."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from transformers import DynamicCache

from benchmarks.fixtures.byte_llama_model import load_byte_llama
from memlens.engine.decoding import ForwardCall
from memlens.engine.static_decoding import StaticDecoder, prefers_static_decoding, prefill_bucket
from memlens.errors import UsageError
from tests.support.cuda import needs_cuda


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return load_byte_llama(torch.float32)[0]


@pytest.mark.parametrize(
    ("tokens", "room", "bucket"),
    [(1, 100, 16), (16, 100, 16), (17, 100, 32), (33, 100, 64), (70, 100, 70), (64, 64, 64)],
)
def test_prefill_buckets(tokens: int, room: int, bucket: int) -> None:
    assert prefill_bucket(tokens, room) == bucket


@pytest.mark.parametrize(("tokens", "room"), [(0, 10), (11, 10)])
def test_a_prefill_that_cannot_run_is_a_usage_error(tokens: int, room: int) -> None:
    with pytest.raises(UsageError):
        prefill_bucket(tokens, room)


def test_only_cuda_selects_it() -> None:
    assert prefers_static_decoding(torch.device("cuda", 0))
    assert not prefers_static_decoding(torch.device("cpu"))
    assert not prefers_static_decoding(torch.device("meta"))


def _ids(text: str) -> torch.Tensor:
    return torch.tensor([list(text.encode())])


def _dynamic(model: nn.Module, chunks: list[torch.Tensor]) -> list[torch.Tensor]:
    cache: Any = DynamicCache(config=model.config)
    forward = ForwardCall.of(model)
    with torch.no_grad():
        return [forward(model, chunk, cache) for chunk in chunks]


def test_padded_prefills_and_steps_predict_what_a_dynamic_cache_does(model: nn.Module) -> None:
    chunks = [_ids("def parse_args(argv):"), _ids("x"), _ids("y"), _ids(" import os.path\n")]
    decoder = StaticDecoder(model, max_tokens=128)
    with torch.no_grad():
        static = [decoder.prefill(chunks[0]), decoder.step(chunks[1][:, 0])]
        static += [decoder.step(chunks[2][:, 0]), decoder.prefill(chunks[3])]
    assert decoder.seen == sum(c.shape[1] for c in chunks)
    for got, expected in zip(static, _dynamic(model, chunks), strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_a_loaded_history_continues_like_the_cache_it_came_from(model: nn.Module) -> None:
    history, turn = _ids("class Queue:\n    def put(self, item):"), _ids(" return")
    cache: Any = DynamicCache(config=model.config)
    forward = ForwardCall.of(model)
    with torch.no_grad():
        forward(model, history, cache)
        layers = [(layer.keys.clone(), layer.values.clone()) for layer in cache.layers]
        expected = forward(model, turn, cache)
        decoder = StaticDecoder(model, max_tokens=96)
        decoder.load(layers)
        got = decoder.prefill(turn)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_a_second_history_reuses_the_static_tensors(model: nn.Module) -> None:
    """Graphs recorded on the cache keep working only while its tensors keep their
    addresses: loading another history copies into them."""
    cache: Any = DynamicCache(config=model.config)
    with torch.no_grad():
        ForwardCall.of(model)(model, _ids("import os"), cache)
    layers = [(layer.keys, layer.values) for layer in cache.layers]
    decoder = StaticDecoder(model, max_tokens=64)
    decoder.load(layers)
    addresses = [layer.keys.data_ptr() for layer in decoder.cache.layers]
    decoder.load(layers[:])
    assert [layer.keys.data_ptr() for layer in decoder.cache.layers] == addresses
    assert decoder.seen == 9


def test_a_full_cache_is_a_usage_error(model: nn.Module) -> None:
    decoder = StaticDecoder(model, max_tokens=16)
    with torch.no_grad():
        decoder.prefill(_ids("0123456789abcdef"))
        with pytest.raises(UsageError, match="full"):
            decoder.step(torch.tensor([1]))


@needs_cuda
def test_the_compiled_step_on_cuda_matches_the_eager_one(model: nn.Module) -> None:
    gpu = model.to("cuda")
    chunks = [_ids("def parse_args(argv):").cuda(), *[torch.tensor([[c]]).cuda() for c in b"xyz"]]
    compiled, eager = StaticDecoder(gpu, 64), StaticDecoder(gpu, 64, compiled=False)
    with torch.no_grad():
        for decoder_out in zip(
            [compiled.prefill(chunks[0]), *[compiled.step(c[:, 0]) for c in chunks[1:]]],
            [eager.prefill(chunks[0]), *[eager.step(c[:, 0]) for c in chunks[1:]]],
            strict=True,
        ):
            torch.testing.assert_close(*decoder_out, rtol=1e-3, atol=1e-3)
    model.to("cpu")
