"""The compressed KV cache (memlens/engine/kv/cache.py) off the CPU: every storage and
eviction policy runs on the meta device, which has no values, so a host round trip on
the decode path (``.item()``, ``bool()``, ``.tolist()`` of a tensor) or a tensor made
without the cache's device (mixing meta with CPU) fails here; on a CUDA device (where
one is lent) the same steps agree with the CPU."""

from __future__ import annotations

import pytest
import torch

from memlens.engine.kv.cache import CompressedKVLayer
from memlens.engine.kv.config import parse_kv
from tests.support.cuda import needs_cuda

STORAGES = ["int8", "int4", "int4:g32:r0", "fp", "int8,sinks:4+window:40", "int4,h2o:0.5"]
PREFILL, STEPS, HEADS, DIM = 100, 70, 2, 64


def _run(storage: str, device: str) -> list[torch.Tensor]:
    """Prefill then one-token steps (passing attention for H2O); the keys each update
    returns."""
    layer = CompressedKVLayer(parse_kv(storage))
    generator = torch.Generator().manual_seed(5)
    outputs = []
    for tokens in [PREFILL, *[1] * STEPS]:
        keys = torch.randn(1, HEADS, tokens, DIM, generator=generator).to(device)
        values = torch.randn(1, HEADS, tokens, DIM, generator=generator).to(device)
        held, _ = layer.update(keys, values)  # (1, H, T, D)
        assert held.device.type == device
        length = held.shape[-2]
        probs = torch.full((1, HEADS, tokens, length), 1 / length, device=device)  # uniform
        layer.observe_attention(probs)
        outputs.append(held)
    return outputs


@pytest.mark.parametrize("storage", STORAGES)
def test_decoding_needs_no_host_values_and_makes_nothing_off_device(storage: str) -> None:
    on_meta = _run(storage, "meta")
    on_cpu = _run(storage, "cpu")
    assert [t.shape for t in on_meta] == [t.shape for t in on_cpu]


@needs_cuda
@pytest.mark.parametrize("storage", STORAGES)
def test_decoding_on_cuda_matches_the_cpu(storage: str) -> None:
    for gpu, cpu in zip(_run(storage, "cuda"), _run(storage, "cpu"), strict=True):
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-3, atol=1e-3)
