"""LoRA adapters: the forward and gradients of a reference formula, the parameters peft
trains, and clear errors that leave the model as it was."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from memlens.engine.weights.layers import Int8Linear
from memlens.errors import UsageError
from memlens.train.lora import LoraConfig, LoraLinear, lora_, merge_lora_, trainable_parameters
from tests.support.small_llama import SMALL_LLAMA_CONFIG
from tests.support.tiny_configs import build_model


def _layer(base: nn.Module | None = None) -> LoraLinear:
    torch.manual_seed(0)
    layer = LoraLinear(base or nn.Linear(64, 32), LoraConfig(r=4, alpha=8), torch.Generator())
    with torch.no_grad():
        layer.lora_b.normal_()  # B starts at zero; make the adapter count
    return layer


def test_forward_and_gradients_match_the_formula() -> None:
    layer = _layer()
    assert isinstance(layer.base, nn.Linear)
    x = torch.randn(3, 64, requires_grad=True)
    a = layer.lora_a.detach().clone().requires_grad_()
    b = layer.lora_b.detach().clone().requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    reference = x_ref @ layer.base.weight.T + layer.base.bias + 2.0 * (x_ref @ a.T) @ b.T
    upstream = torch.randn(3, 32)
    (layer(x) * upstream).sum().backward()
    (reference * upstream).sum().backward()
    torch.testing.assert_close(layer(x), reference)
    for actual, expected in ((layer.lora_a.grad, a.grad), (layer.lora_b.grad, b.grad)):
        assert actual is not None and expected is not None
        torch.testing.assert_close(actual, expected)
    assert x.grad is not None and x_ref.grad is not None
    torch.testing.assert_close(x.grad, x_ref.grad)
    assert layer.base.weight.grad is None  # the base is frozen


def test_merged_weight_computes_the_same() -> None:
    layer = _layer()
    x = torch.randn(3, 64)
    merged = x @ layer.merged_weight().T + layer.base.bias  # type: ignore[operator]
    torch.testing.assert_close(merged, layer(x), rtol=1e-5, atol=1e-5)


def test_qlora_base_stays_compressed_and_passes_gradients() -> None:
    base = Int8Linear.from_linear(nn.Linear(64, 32))
    layer = _layer(base)
    x = torch.randn(3, 64, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad is not None and layer.lora_a.grad is not None
    assert layer.base is base and base.q.dtype == torch.int8


def test_lora_on_a_model_trains_only_the_adapters_like_peft() -> None:
    peft = pytest.importorskip("peft", reason="peft is the dev extra's LoRA peer")
    ours = lora_(build_model(SMALL_LLAMA_CONFIG), LoraConfig(r=8, targets=("q_proj", "v_proj")))
    theirs = peft.get_peft_model(
        build_model(SMALL_LLAMA_CONFIG),
        peft.LoraConfig(r=8, lora_alpha=32, target_modules=["q_proj", "v_proj"]),
    )
    assert (
        trainable_parameters(ours)
        == trainable_parameters(theirs)
        == 2 * 8 * ((128 + 128) + (128 + 64))
    )
    assert sum(isinstance(m, LoraLinear) for m in ours.modules()) == 4


def test_merge_replaces_adapters_with_plain_linears() -> None:
    model = lora_(build_model(SMALL_LLAMA_CONFIG), LoraConfig(r=4))
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LoraLinear):
                module.lora_b.normal_(std=0.01)
        before = model(ids).logits
        merge_lora_(model)
        after = model(ids).logits
    assert not any(isinstance(m, LoraLinear) for m in model.modules())
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (("input_layernorm",), "Linear layers only.*LlamaRMSNorm"),
        (("model.layers.0.mlp",), "Linear layers only.*LlamaMLP"),
        (("no_such_proj",), "no module matches"),
    ],
)
def test_bad_targets_are_refused_and_change_nothing(targets: tuple[str, ...], message: str) -> None:
    model = build_model(SMALL_LLAMA_CONFIG)
    trainable = trainable_parameters(model)
    with pytest.raises(UsageError, match=message):
        lora_(model, LoraConfig(targets=targets))
    assert trainable_parameters(model) == trainable
    assert not any(isinstance(m, LoraLinear) for m in model.modules())


@pytest.mark.parametrize("values", [{"r": 0}, {"alpha": 0.0}, {"dropout": 1.0}, {"targets": ()}])
def test_bad_configs_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        LoraConfig(**values)  # type: ignore[arg-type]
