"""``Int8DynLinear`` (memlens/engine/weights/layers.py): the fbgemm-packed fast path and the
reference it falls back to where fbgemm does not run agree, and its error is measured."""

from __future__ import annotations

import copy

import pytest
import torch

from memlens.engine.weights.layers import Int8DynLinear
from memlens.errors import UsageError
from memlens.kernels import cpu
from memlens.profiler.measure import module_bytes

needs_fbgemm = pytest.mark.skipif(
    not cpu.int8_dyn_available(), reason="fbgemm's quantized engine is not here"
)


def _linear(bias: bool = True) -> torch.nn.Linear:
    torch.manual_seed(0)
    return torch.nn.Linear(256, 96, bias=bias)


def _without_fbgemm(monkeypatch: pytest.MonkeyPatch, linear: torch.nn.Linear) -> Int8DynLinear:
    """The layer as a CPU without fbgemm builds it (the forced fallback)."""
    monkeypatch.setattr(cpu, "int8_dyn_available", lambda: False)
    layer = Int8DynLinear.from_linear(linear)
    monkeypatch.undo()
    return layer


@needs_fbgemm
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_packed_and_fallback_agree(
    monkeypatch: pytest.MonkeyPatch, bias: bool, dtype: torch.dtype
) -> None:
    linear = _linear(bias)
    fast = Int8DynLinear.from_linear(linear)
    plain = _without_fbgemm(monkeypatch, linear)
    assert fast.packed is not None and fast.q is None
    assert plain.packed is None and plain.q is not None
    x = torch.randn(2, 7, 256, generator=torch.Generator().manual_seed(1)).to(dtype)
    with torch.no_grad():
        expected = plain(x)
        actual = fast(x)
    assert actual.dtype == dtype
    torch.testing.assert_close(actual.float(), expected.float(), atol=2e-2, rtol=2e-2)
    assert module_bytes(fast) == module_bytes(plain)  # packed bytes are counted


def test_output_error_against_float_is_small(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scheme's own error: 7-bit activations and INT8 weights, ~1.5% of the output."""
    linear = _linear()
    x = torch.randn(4, 256, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = linear(x)
        for layer in (Int8DynLinear.from_linear(linear), _without_fbgemm(monkeypatch, linear)):
            error = (layer(x) - expected).norm() / expected.norm()
            assert float(error) < 0.03


@needs_fbgemm
def test_state_dict_unpacks_and_copies_keep_the_packing() -> None:
    layer = Int8DynLinear.from_linear(_linear())
    state = layer.state_dict()
    assert state["q"].dtype is torch.int8 and state["q"].shape == (96, 256)
    x = torch.randn(3, 256)
    twin = copy.deepcopy(layer)
    assert twin.packed is not None
    assert torch.equal(twin(x), layer(x))


@needs_fbgemm
def test_packed_layers_refuse_inputs_off_the_cpu() -> None:
    layer = Int8DynLinear.from_linear(_linear())
    with pytest.raises(UsageError, match="CPU"):
        layer(torch.empty(1, 256, device="meta"))
