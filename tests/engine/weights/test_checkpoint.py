"""Compressed checkpoints (memlens/engine/weights/checkpoint.py): save → load is bit-exact, and a
damaged or mismatched checkpoint is a clear ConfigError."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from memlens.engine import Int4WeightConfig, Int8WeightConfig, WeightConfig, compress_
from memlens.engine.weights.checkpoint import load_compressed, save_compressed
from memlens.engine.weights.config import (
    CONFIG_VERSION,
    Int8DynWeightConfig,
    LowRankWeightConfig,
    MixedWeightConfig,
)
from memlens.engine.weights.layers import Int4Linear, Int8DynLinear, Int8Linear, LowRankLinear
from memlens.errors import ConfigError
from tests.support.tiny_configs import build_model


def _model(model_type: str, tied: bool) -> torch.nn.Module:
    config = {
        "model_type": model_type,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 256,
        "pad_token_id": 0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "tie_word_embeddings": tied,
    }
    return build_model(config).to(torch.bfloat16)


@pytest.mark.parametrize(
    ("model_type", "tied", "config", "layer"),
    [
        ("llama", False, Int8WeightConfig(), Int8Linear),
        ("qwen2", True, Int4WeightConfig(group_size=32), Int4Linear),
        ("qwen2", False, Int8DynWeightConfig(), Int8DynLinear),  # biases, fbgemm-packed
        (
            "llama",
            False,
            MixedWeightConfig(
                default=LowRankWeightConfig(energy=0.5),
                overrides=(("*.self_attn.*", Int8WeightConfig()),),
            ),
            LowRankLinear,
        ),
    ],
)
def test_save_then_load_is_bit_exact(
    tmp_path: Path, model_type: str, tied: bool, config: WeightConfig, layer: type
) -> None:
    model = compress_(_model(model_type, tied), config)
    ids = torch.randint(3, 256, (1, 12), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = model(ids).logits
    save_compressed(model, config, tmp_path)
    loaded = load_compressed(tmp_path)
    assert isinstance(loaded.model.layers[1].mlp.down_proj, layer)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, expected)
    assert all(t.data_ptr() % 64 == 0 for t in loaded.state_dict().values())  # kernels.cpu
    metadata = json.loads((tmp_path / "memlens.json").read_text())
    assert metadata["config"]["version"] == CONFIG_VERSION
    assert metadata["config"]["scheme"] == config.scheme
    if tied:
        assert loaded.lm_head.weight is loaded.model.embed_tokens.weight


def test_damaged_checkpoints_are_clear_errors(tmp_path: Path) -> None:
    config = Int8WeightConfig()
    save_compressed(compress_(_model("llama", False), config), config, tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # truncated
    with pytest.raises(ConfigError, match="truncated or corrupt"):
        load_compressed(tmp_path)
    (tmp_path / "memlens.json").write_text("{not json")
    with pytest.raises(ConfigError, match="corrupt"):
        load_compressed(tmp_path)
    with pytest.raises(ConfigError, match="not a memlens checkpoint"):
        load_compressed(tmp_path / "elsewhere")


def test_mismatched_config_is_a_clear_error(tmp_path: Path) -> None:
    config = Int8WeightConfig()
    save_compressed(compress_(_model("llama", False), config), config, tmp_path)
    metadata = json.loads((tmp_path / "memlens.json").read_text())
    metadata["model_config"]["num_hidden_layers"] = 3
    (tmp_path / "memlens.json").write_text(json.dumps(metadata))
    with pytest.raises(ConfigError, match=r"do not match|no stored values"):
        load_compressed(tmp_path)
    metadata["model_config"]["num_hidden_layers"] = 2
    metadata["config"]["version"] = 99
    (tmp_path / "memlens.json").write_text(json.dumps(metadata))
    with pytest.raises(ConfigError, match="version 99"):
        load_compressed(tmp_path)


_WRITE_ON_ANOTHER_CPU = textwrap.dedent(
    """
    import sys, torch
    from memlens.engine import Int4WeightConfig, compress_
    from memlens.engine.weights.checkpoint import save_compressed
    from tests.support.tiny_configs import build_model
    config = dict(model_type="llama", hidden_size=64, intermediate_size=128,
                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  vocab_size=256, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    model = compress_(build_model(config).to(torch.bfloat16), Int4WeightConfig(group_size=32))
    ids = torch.arange(3, 15)[None]
    with torch.no_grad():
        torch.save(model(ids).logits, sys.argv[2])
    save_compressed(model, Int4WeightConfig(group_size=32), sys.argv[1])
    """
)


def test_an_int4_checkpoint_reads_the_same_on_a_cpu_that_packs_differently(
    tmp_path: Path,
) -> None:
    """aten packs INT4 for the CPU in a byte order of its build's CPU level (the plain path,
    AVX2 and AVX-512 each their own): a checkpoint written under the plain path must give
    the same model here."""
    root = Path(__file__).resolve().parents[3]  # the repository: memlens and tests.support
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "PYTHONPATH": str(root)}
    folder, logits = tmp_path / "ckpt", tmp_path / "logits.pt"
    subprocess.run(
        [sys.executable, "-c", _WRITE_ON_ANOTHER_CPU, str(folder), str(logits)],
        env=env,
        check=True,
    )
    loaded = load_compressed(folder)
    with torch.no_grad():
        here = loaded(torch.arange(3, 15)[None]).logits
    there = torch.load(logits)
    # the kernels differ in rounding; misread weights would differ by whole logits
    assert (here.float() - there.float()).abs().max() < 0.05 * there.float().abs().max()


def test_an_int4_checkpoint_from_before_the_portable_layout_still_loads(
    tmp_path: Path,
) -> None:
    """Checkpoints written before ``int4_layout`` held this machine's aten packing."""
    config = Int4WeightConfig(group_size=32)
    model = compress_(_model("llama", False), config)
    save_compressed(model, config, tmp_path)
    metadata = json.loads((tmp_path / "memlens.json").read_text())
    del metadata["int4_layout"]
    (tmp_path / "memlens.json").write_text(json.dumps(metadata))
    weights = tmp_path / "model.safetensors"
    old = load_file(str(weights))
    for name, module in model.named_modules():
        if isinstance(module, Int4Linear):
            old[f"{name}.packed"] = module.packed  # the in-memory (aten) packing
    save_file(old, str(weights))
    loaded = load_compressed(tmp_path)
    ids = torch.arange(3, 15)[None]
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, model(ids).logits)
