"""The analytic training estimate: exact LoRA trainable counts (the published Llama-2-7B
figure and peft's own count), optimizer-state and precision bytes, ZeRO/FSDP sharding
against the ZeRO paper's model-state formulas, and clear errors for bad configurations."""

from __future__ import annotations

import json
from typing import Any

import pytest

from memlens.errors import UsageError
from memlens.profiler.configs import resolve_config
from memlens.profiler.training import TrainingEstimate, training_estimate
from memlens.profiler.training_config import (
    TrainingConfig,
    config_from_json,
    training_config,
)
from tests.support.tiny_configs import build_model, tiny_config


def _llama2_7b() -> dict[str, Any]:
    return dict(resolve_config("meta-llama/Llama-2-7b-hf", allow_network=False).config)


def _estimate(config: dict[str, Any], **options: Any) -> TrainingEstimate:
    options.setdefault("train", "full")
    return training_estimate(config, "model", training_config(**options))


def test_llama2_7b_lora_r8_on_q_v_has_the_published_trainable_count() -> None:
    # peft's README: "trainable params: 4,194,304 || all params: 6,742,609,920".
    estimate = _estimate(_llama2_7b(), train="lora:r8", lora_targets="q_proj,v_proj")
    assert estimate.trainable_params == 4_194_304
    assert estimate.params + estimate.adapter_params == 6_742_609_920
    assert estimate.adapter_bytes == 4_194_304 * 4  # fp32 adapters
    assert estimate.gradient_bytes == 4_194_304 * 4
    assert estimate.optimizer_bytes == 4_194_304 * 8 + 64 * 2 * 4  # + AdamW step counters


@pytest.mark.parametrize(
    ("name", "targets"),
    [
        ("llama", None),
        ("llama", "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"),
        ("llama", "all-linear"),
        ("gpt2", None),
        ("gpt2", "c_attn,c_fc"),
        ("qwen2-qkv-bias-tied", "q_proj,v_proj"),
        ("phi3-fused", "qkv_proj,gate_up_proj"),
        ("mistral-sliding", "o_proj,down_proj"),
    ],
)
def test_lora_trainable_count_equals_peft(name: str, targets: str | None) -> None:
    peft = pytest.importorskip("peft")
    config = tiny_config(name)
    estimate = _estimate(config, train="lora:r4", lora_targets=targets)
    if targets is None:  # peft's default targets for the family
        lora = peft.LoraConfig(r=4)
    elif targets == "all-linear":
        lora = peft.LoraConfig(r=4, target_modules="all-linear")
    else:
        lora = peft.LoraConfig(r=4, target_modules=targets.split(","))
    model = peft.get_peft_model(build_model(config), lora)
    trainable, total = model.get_nb_trainable_parameters()
    assert estimate.trainable_params == trainable
    assert estimate.params + estimate.adapter_params == total


def test_full_fine_tuning_bytes_per_parameter() -> None:
    config = _llama2_7b()
    params = 6_738_415_616
    fp32 = _estimate(config, optimizer="adamw")
    assert fp32.trainable_params == params
    assert fp32.weight_bytes == fp32.gradient_bytes == 4 * params
    assert fp32.master_bytes == 0
    mixed = _estimate(config, precision="bf16-mixed")
    assert mixed.weight_bytes == mixed.gradient_bytes == 2 * params
    assert mixed.master_bytes == 4 * params
    sgd = _estimate(config, optimizer="sgd")
    assert sgd.optimizer_bytes == 0
    adam8 = _estimate(config, optimizer="adamw8bit")
    assert 2 * params < adam8.optimizer_bytes < 2.05 * params
    adafactor = _estimate(config, optimizer="adafactor")
    assert adafactor.optimizer_bytes < 0.01 * params  # factored: rows + columns


def test_checkpointing_keeps_only_layer_inputs() -> None:
    config = tiny_config("llama")
    plain = _estimate(config, batch=2, seq=64)
    checkpointed = _estimate(config, batch=2, seq=64, gradient_checkpointing=True)
    layer = plain.blocks[1]
    assert layer.activation_bytes == layer.activation_bytes_plain > 0
    assert checkpointed.blocks[1].activation_bytes == 2 * 64 * 64 * 4  # positions × hidden
    assert checkpointed.activation_bytes < plain.activation_bytes
    assert checkpointed.activation_bytes_plain == plain.activation_bytes_plain


def test_qlora_stores_layer_linears_as_nf4() -> None:
    config = _llama2_7b()
    lora = _estimate(config, train="lora:r16", precision="bf16-mixed")
    qlora = _estimate(config, train="qlora:r16", precision="bf16-mixed")
    assert qlora.trainable_params == lora.trainable_params
    assert 3.4e9 < qlora.weight_bytes < 4.0e9  # 6.5B linear params at ~4.1 bits + bf16 rest
    assert qlora.peak_bytes < lora.peak_bytes


# ZeRO paper (Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training Trillion
# Parameter Models", SC'20, §5 and Figure 1), mixed-precision Adam, K = 12:
#   baseline (2 + 2 + K)Ψ, P_os 2Ψ + 2Ψ + KΨ/N, P_os+g 2Ψ + (2 + K)Ψ/N, P_os+g+p (2 + 2 + K)Ψ/N.
def _zero_paper(stage: int, psi: int, n: int) -> float:
    k = 12
    return {
        0: (2 + 2 + k) * psi,
        1: 2 * psi + 2 * psi + k * psi / n,
        2: 2 * psi + (2 + k) * psi / n,
        3: (2 + 2 + k) * psi / n,
    }[stage]


# DeepSpeed's own estimators without offload (deepspeed/runtime/zero/stage_1_and_2.py
# estimate_zero2_model_states_mem_needs: 4Ψ + 16Ψ/N; stage3.py
# estimate_zero3_model_states_mem_needs: 4·largest_layer + 18Ψ/N) add buffers: upper bounds.
def _deepspeed_estimator(stage: int, psi: int, n: int, largest_layer: int) -> int:
    if stage == 3:
        return 4 * largest_layer + int(18 * psi / n)
    return 4 * psi + int(16 * psi / n)


@pytest.mark.parametrize(
    ("sharding", "stage", "devices"),
    [("none", 0, 1), ("zero1", 1, 8), ("zero2", 2, 8), ("zero3", 3, 8), ("fsdp", 3, 4)],
)
def test_sharded_model_states_follow_the_zero_formulas(
    sharding: str, stage: int, devices: int
) -> None:
    config = _llama2_7b()
    estimate = _estimate(config, precision="bf16-mixed", devices=devices, sharding=sharding)
    psi = estimate.params
    tensors = 2 + 32 * 9 + 1  # embedding, lm_head, 9 per layer, final norm
    step_counters = 4 * tensors  # torch's AdamW step, 4 bytes per tensor
    expected = _zero_paper(stage, psi, devices)
    assert abs(estimate.model_state_bytes - expected) <= step_counters + devices
    if stage >= 2:
        largest = max(b.params for b in estimate.blocks)
        assert estimate.model_state_bytes <= _deepspeed_estimator(stage, psi, devices, largest)


def test_training_config_round_trips_through_json() -> None:
    config = training_config(
        "lora:r8", lora_targets="q_proj,v_proj", optimizer="adamw8bit", batch=4, seq=256
    )
    data = json.loads(json.dumps(config.to_json()))
    assert data["version"] == 1
    assert config_from_json(data) == config
    assert config_from_json({}) == TrainingConfig()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"train": "lora:r0"}, "LoRA rank must be an integer between 1"),
        ({"train": "lora:r-2"}, "LoRA rank must be an integer between 1"),
        ({"train": "lora:x"}, "write the rank as lora:r8"),
        ({"train": "full:r8"}, "lora or qlora only"),
        ({"train": "dora"}, "unknown training method 'dora'"),
        ({"optimizer": "adam"}, "unknown optimizer 'adam'"),
        ({"precision": "int8"}, "unknown precision 'int8'"),
        ({"batch": 0}, "--batch must be an integer between 1"),
        ({"seq": 0}, "--seq must be an integer between 1"),
        ({"sharding": "zero3"}, "needs --devices 2 or more"),
        ({"train": "lora", "lora_targets": " , "}, "--lora-targets is empty"),
    ],
)
def test_bad_configs_raise_usage_errors(options: dict[str, Any], message: str) -> None:
    options.setdefault("train", "full")
    with pytest.raises(UsageError, match=message):
        training_config(**options)


def test_lora_target_matching_no_module_names_the_modules_there_are() -> None:
    with pytest.raises(UsageError, match=r"'qkv' matches no linear module.*q_proj"):
        _estimate(tiny_config("llama"), train="lora", lora_targets="q_proj,qkv")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must be an object"),
        ({"method": "full", "colour": 1}, "unknown keys: colour"),
        ({"version": 2}, "version 2 is not supported"),
        ({"lora_targets": "q_proj"}, "list of module names"),
        ({"gradient_checkpointing": "yes"}, "true or false"),
        ({"batch": True}, "--batch must be an integer"),
    ],
)
def test_bad_json_configs_raise_usage_errors(data: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        config_from_json(data)
