"""An INT4 layer keeps one stored form across devices and machines
(memlens/engine/weights/int4_devices.py): its state is the portable packing wherever it
runs, moves that keep the kernel keep the bytes, and a device with no INT4 kernel says
so. The moves to and from CUDA run where a GPU is lent."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from memlens.engine.weights.layers import Int4Linear
from memlens.errors import UsageError
from memlens.kernels import formats
from memlens.kernels.formats import quantize_int4_weight
from tests.support.cuda import needs_cuda


def _layer(out: int = 48, inp: int = 128, group: int = 32) -> tuple[nn.Linear, Int4Linear]:
    torch.manual_seed(out + inp)
    linear = nn.Linear(inp, out)
    return linear, Int4Linear.from_linear(linear, group)


def test_moves_within_the_cpu_layout_keep_the_bytes() -> None:
    _, layer = _layer()
    before = layer.packed.clone()
    layer.half().to(torch.bfloat16).float()
    assert torch.equal(layer.packed, before)
    on_meta = layer.to("meta")
    assert on_meta.packed.shape == before.shape and on_meta.packed.is_meta


def test_state_is_the_portable_form_and_loads_back() -> None:
    linear, layer = _layer()
    values, _, _ = quantize_int4_weight(linear.weight.detach(), 32)
    state = layer.state_dict()
    # two values per byte in formats.pack_int4's order, whatever this CPU's aten packs
    assert torch.equal(state["packed"], formats.pack_int4(values.to(torch.uint8)))
    assert state["packed"].dtype == torch.uint8 and state["packed"].shape == (48, 64)
    fresh = Int4Linear.from_linear(nn.Linear(128, 48), 32)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.packed, layer.packed)  # packed again for this CPU's kernel
    x = torch.randn(3, 128)
    assert torch.equal(fresh(x), layer(x))


def test_a_device_without_an_int4_kernel_is_named() -> None:
    """Bad input: an INT4 layer on the meta device (no kernel) is a UsageError."""
    _, layer = _layer()
    layer.to("meta")
    with pytest.raises(UsageError, match="not on meta"):
        layer(torch.empty(2, 128, device="meta", dtype=torch.bfloat16))


@needs_cuda
@pytest.mark.parametrize(("out", "inp", "group"), [(48, 128, 32), (1040, 4096, 64), (64, 384, 128)])
def test_cuda_round_trip_keeps_the_stored_form_and_the_outputs(
    out: int, inp: int, group: int
) -> None:
    _, layer = _layer(out, inp, group)
    stored = layer.packed.clone()
    x = torch.randn(3, inp, dtype=torch.bfloat16)
    with torch.no_grad():
        on_cpu = layer(x)
        layer.cuda()
        assert layer.packed.dim() == 4  # tinygemm's layout
        on_gpu = layer(x.cuda())
        assert torch.equal(layer.state_dict()["packed"].cpu(), stored)
        layer.cpu()
    assert torch.equal(layer.packed, stored)
    torch.testing.assert_close(on_gpu.cpu().float(), on_cpu.float(), rtol=2e-2, atol=0.1)


@needs_cuda
def test_a_cpu_state_loads_into_a_cuda_layer() -> None:
    _, layer = _layer()
    torch.manual_seed(99)
    other = Int4Linear.from_linear(nn.Linear(128, 48), 32)  # other values, same shapes
    state = layer.state_dict()
    other.cuda().load_state_dict(state)
    x = torch.randn(2, 128, dtype=torch.bfloat16)
    with torch.no_grad():
        torch.testing.assert_close(other(x.cuda()).cpu(), layer(x), rtol=2e-2, atol=0.1)


@needs_cuda
def test_a_layer_compressed_on_the_gpu_is_packed_for_it_and_saves_the_stored_form() -> None:
    linear, on_cpu = _layer(64, 256, 64)
    on_gpu = Int4Linear.from_linear(linear.cuda(), 64)
    assert on_gpu.packed.is_cuda and on_gpu.packed.dim() == 4
    assert torch.equal(on_gpu.state_dict()["packed"].cpu(), on_cpu.packed)
