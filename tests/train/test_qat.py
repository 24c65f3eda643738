"""QAT: what trains is what deploys. The exported checkpoint loads through the engine and
decodes the same greedy tokens as the fake-quantized training model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from benchmarks.fixtures.byte_llama_model import encode, load_byte_llama
from memlens.engine.decoding import generate
from memlens.engine.loading import load_model
from memlens.engine.weights.checkpoint import save_compressed
from memlens.engine.weights.config import Int4WeightConfig, Int8WeightConfig, WeightConfig
from memlens.engine.weights.layers import CompressedLinear, Int4Linear
from memlens.errors import UsageError
from memlens.train.lora import LoraConfig, LoraLinear, lora_
from memlens.train.qat import FakeQuantLinear, export_, qat_

PROMPT = "def parse(self, text):\n    "
NEW_TOKENS = 8


def _greedy(model: nn.Module, prompt: torch.Tensor, steps: int) -> list[int]:
    """Greedy decoding by full re-computation (no cache), in bf16 activations as the
    compressed layers compute."""
    ids = prompt[None]
    with torch.no_grad():
        for _ in range(steps):
            logits = model(input_ids=ids).logits[:, -1]  # (1, V)
            ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], dim=1)
    return ids[0, prompt.numel() :].tolist()


def _trained_lora_qat(config: WeightConfig) -> nn.Module:
    model, _ = load_byte_llama()
    lora_(model, LoraConfig(r=4, targets=("q_proj", "v_proj", "down_proj")))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LoraLinear):
                module.lora_b.normal_(std=0.02, generator=generator)
    return qat_(model, config)


def test_qat_wraps_every_linear_compress_would_convert() -> None:
    model = _trained_lora_qat(Int4WeightConfig(group_size=32))
    lora = [m for m in model.modules() if isinstance(m, LoraLinear)]
    plain = [m for m in model.modules() if isinstance(m, FakeQuantLinear)]
    assert len(lora) == 12 and all(m.fake_quant is not None for m in lora)
    assert len(plain) == 4 * 4 + 1  # k, o, gate, up per layer and the untied lm_head
    down = model.get_submodule("model.layers.0.mlp.down_proj")
    assert isinstance(down, LoraLinear) and down.fake_quant == Int8WeightConfig()  # 688 % 32


@pytest.mark.parametrize("config", [Int8WeightConfig(), Int4WeightConfig(group_size=32)])
def test_export_load_generate_equals_the_fake_quant_forward(
    config: WeightConfig, tmp_path: Path
) -> None:
    model = _trained_lora_qat(config)
    prompt = encode(PROMPT)
    expected = _greedy(model.to(torch.bfloat16), prompt, NEW_TOKENS)
    export_(model)
    assert any(isinstance(m, Int4Linear) for m in model.modules()) == (config.scheme == "int4")
    save_compressed(model, config, tmp_path / "ckpt")
    loaded = load_model(tmp_path / "ckpt")
    assert loaded.compressed == config
    assert sum(isinstance(m, CompressedLinear) for m in loaded.model.modules()) == 29
    tokens = generate(loaded.model, prompt, NEW_TOKENS)
    assert tokens[0, prompt.numel() :].tolist() == expected


def test_export_needs_qat() -> None:
    model, _ = load_byte_llama()
    with pytest.raises(UsageError, match="qat_"):
        export_(model)
