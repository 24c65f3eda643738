"""INT8 saved activations: gradients stay within a stated tolerance of fp32 on the
trained byte-level model, the bytes shrink ≥ 3.5×, and the module filter and the
parameter exclusion hold."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmarks.fixtures.byte_llama_model import encode, heldout_text, load_byte_llama
from memlens.errors import UsageError
from memlens.train.int8_activations import (
    Int8ActivationConfig,
    count_saved_bytes,
    int8_activations,
)

GRADIENT_COSINE = 0.99
"""INT8 storage perturbs each saved value by at most half a quantization step (1/510 of
its group's range): the whole gradient must keep this cosine with the fp32 one."""
GRADIENT_REL_ERROR = 0.1
"""…and this relative L2 error."""


@pytest.fixture(scope="module")
def model() -> nn.Module:
    model, _ = load_byte_llama()
    return model.train()


def _batch() -> torch.Tensor:
    return encode(heldout_text()[:258]).view(2, 129)  # (B, T + 1)


def _gradient(model: nn.Module, config: Int8ActivationConfig | None) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    ids = _batch()
    if config is None:
        with count_saved_bytes(model):
            loss = model(input_ids=ids[:, :-1], labels=ids[:, :-1]).loss
    else:
        with int8_activations(model, config):
            loss = model(input_ids=ids[:, :-1], labels=ids[:, :-1]).loss
    loss.backward()
    return torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])


def test_gradients_are_close_to_fp32(model: nn.Module) -> None:
    torch.manual_seed(0)
    expected = _gradient(model, None)
    actual = _gradient(model, Int8ActivationConfig())
    cosine = torch.nn.functional.cosine_similarity(actual, expected, dim=0)
    assert cosine > GRADIENT_COSINE
    assert (actual - expected).norm() / expected.norm() < GRADIENT_REL_ERROR


def test_saved_bytes_shrink_at_least_3_5_times(model: nn.Module) -> None:
    ids = _batch()
    with count_saved_bytes(model) as full:
        model(input_ids=ids[:, :-1]).logits.sum().backward()
    with int8_activations(model) as int8:
        model(input_ids=ids[:, :-1]).logits.sum().backward()
    assert full.original == full.stored > 0
    assert int8.original == full.original
    assert int8.ratio >= 3.5
    assert int8.tensors > 0


def test_the_module_filter_covers_only_those_modules(model: nn.Module) -> None:
    ids = _batch()
    with int8_activations(model) as everything:
        model(input_ids=ids[:, :-1]).logits.sum().backward()
    with int8_activations(model, Int8ActivationConfig(modules=("Linear",))) as linears:
        model(input_ids=ids[:, :-1]).logits.sum().backward()
    with int8_activations(model, Int8ActivationConfig(modules=("NoSuchModule",))) as none:
        model(input_ids=ids[:, :-1]).logits.sum().backward()
    assert none.original == 0 and none.tensors == 0
    assert 0 < linears.original < everything.original
    assert 0 < linears.tensors < everything.tensors


def test_parameters_are_neither_quantized_nor_counted() -> None:
    linear = nn.Linear(256, 256)
    x = torch.randn(8, 256, requires_grad=True)
    with int8_activations(linear, Int8ActivationConfig(min_elements=1)) as saved:
        linear(x).sum().backward()
    assert saved.original == 8 * 256 * 4  # the input only, not the weight
    assert linear.weight.grad is not None
    expected = torch.ones(8, 256).T @ x.detach()  # dW = gradᵀ x, x dequantized
    torch.testing.assert_close(linear.weight.grad, expected, rtol=0.02, atol=0.05)


@pytest.mark.parametrize("group_size", [0, 1, -4])
def test_bad_group_sizes_are_refused(group_size: int) -> None:
    with pytest.raises(UsageError, match="group size"):
        Int8ActivationConfig(group_size=group_size)
