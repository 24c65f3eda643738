"""Loading and compressing as one step (memlens/engine/load_compressing.py, reached
through ``load_model(..., weights=...)``): the result equals ``load_model`` then
``compress_`` for every scheme, over one shard or several. Bad inputs tried: an ``auto``
config, a low-rank error target, an already compressed checkpoint, a truncated shard, a
shard with a garbage header, an entry whose size does not match its shape, a checkpoint
missing a tensor, one whose names the model does not have."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
import torch

from memlens.engine.load_compressing import read_safetensors
from memlens.engine.loading import load_model
from memlens.engine.weights.checkpoint import save_compressed
from memlens.engine.weights.config import (
    AutoWeightConfig,
    Int4WeightConfig,
    Int8WeightConfig,
    LowRankWeightConfig,
    MixedWeightConfig,
    WeightConfig,
)
from memlens.engine.weights.quantize import compress_
from memlens.errors import ConfigError, ModelNotFoundError, UsageError
from tests.support.byte_model import BYTE_MODEL_CONFIG
from tests.support.tiny_configs import build_model

CONFIGS = [
    Int8WeightConfig(),
    Int4WeightConfig(group_size=32),
    LowRankWeightConfig(energy=0.9),
    MixedWeightConfig(default=Int4WeightConfig(group_size=64), overrides=(("lm_head", None),)),
]


@pytest.fixture(scope="module")
def sharded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The byte model saved in several shards (bf16, biases included)."""
    folder = tmp_path_factory.mktemp("sharded")
    config = {**BYTE_MODEL_CONFIG, "attention_bias": True}
    build_model(config).to(torch.bfloat16).save_pretrained(folder, max_shard_size="40KB")
    assert len(list(folder.glob("*.safetensors"))) > 2
    return folder


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return dict(model.state_dict())


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.label())
@pytest.mark.parametrize("folder", ["byte_model_dir", "sharded_dir"])
def test_one_step_equals_load_then_compress(
    config: WeightConfig, folder: str, request: pytest.FixtureRequest
) -> None:
    path: Path = request.getfixturevalue(folder)
    two_step = compress_(load_model(path, torch.float32).model, config)
    loaded = load_model(path, torch.float32, weights=config)
    assert loaded.compressed == config and loaded.causal
    one_step = loaded.model
    assert [type(m) for m in one_step.modules()] == [type(m) for m in two_step.modules()]
    expected, got = _state(two_step), _state(one_step)
    assert expected.keys() == got.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(got[name], tensor, rtol=0, atol=0, msg=name)
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        torch.testing.assert_close(one_step(ids).logits, two_step(ids).logits)
    assert not one_step.training


def test_tensors_read_one_by_one_equal_safetensors(sharded_dir: Path) -> None:
    from safetensors.torch import load_file

    for shard in sharded_dir.glob("*.safetensors"):
        expected = load_file(shard)
        got = dict(read_safetensors(shard))
        assert got.keys() == expected.keys()
        for name, tensor in expected.items():
            assert torch.equal(got[name], tensor) and got[name].dtype == tensor.dtype


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (AutoWeightConfig(), "calibration text"),
        (LowRankWeightConfig(max_error=0.05), "calibration inputs"),
        (MixedWeightConfig(default=LowRankWeightConfig(max_error=0.05)), "calibration"),
    ],
)
def test_configs_that_need_calibration_are_refused(
    byte_model_dir: Path, config: WeightConfig, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        load_model(byte_model_dir, weights=config)


def test_an_already_compressed_checkpoint_is_refused(byte_model_dir: Path, tmp_path: Path) -> None:
    model = compress_(load_model(byte_model_dir).model, Int8WeightConfig())
    save_compressed(model, Int8WeightConfig(), tmp_path / "ck")
    with pytest.raises(UsageError, match="already compressed"):
        load_model(tmp_path / "ck", weights=Int8WeightConfig())


def _copy(source: Path, tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "model"
    shutil.copytree(source, folder)
    return folder, folder / "model.safetensors"


def test_a_truncated_shard_is_a_config_error(byte_model_dir: Path, tmp_path: Path) -> None:
    folder, weights = _copy(byte_model_dir, tmp_path)
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ConfigError, match="truncated"):
        load_model(folder, weights=Int8WeightConfig())


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"\xff" * 8, "not a safetensors file"),
        (struct.pack("<Q", 4) + b"{{{{", "not JSON"),
        (struct.pack("<Q", 2) + b"[]", "not a table"),
        (b"abc", "no safetensors header"),
    ],
)
def test_a_garbage_header_is_a_config_error(
    byte_model_dir: Path, tmp_path: Path, header: bytes, message: str
) -> None:
    folder, weights = _copy(byte_model_dir, tmp_path)
    weights.write_bytes(header)
    with pytest.raises(ConfigError, match=message):
        load_model(folder, weights=Int8WeightConfig())


def _rewrite_header(weights: Path, edit: dict[str, object]) -> None:
    raw = weights.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    for key, value in edit.items():
        if value is None:
            header.pop(key)
        else:
            header[key] = value
    text = json.dumps(header).encode()
    weights.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + length :])


def test_a_size_that_does_not_match_the_shape_is_a_config_error(
    byte_model_dir: Path, tmp_path: Path
) -> None:
    folder, weights = _copy(byte_model_dir, tmp_path)
    entry = dict(read_header(weights)["model.norm.weight"])
    entry["shape"] = [3]
    _rewrite_header(weights, {"model.norm.weight": entry})
    with pytest.raises(ConfigError, match=r"model\.norm\.weight holds"):
        load_model(folder, weights=Int8WeightConfig())


def read_header(weights: Path) -> dict[str, dict[str, object]]:
    raw = weights.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return dict(json.loads(raw[8 : 8 + length]))


@pytest.mark.parametrize("renamed", [False, True])
def test_a_missing_or_unknown_tensor_is_a_config_error(
    byte_model_dir: Path, tmp_path: Path, renamed: bool
) -> None:
    folder, weights = _copy(byte_model_dir, tmp_path)
    key = "model.layers.1.mlp.up_proj.weight"
    entry = read_header(weights)[key]
    _rewrite_header(
        weights, {key: None, **({"transformer.h.1.fc.weight": entry} if renamed else {})}
    )
    match = "no stored values for model.layers.1.mlp.up_proj"
    with pytest.raises(ConfigError, match=match + (".*transformer.h.1.fc" if renamed else "")):
        load_model(folder, weights=Int8WeightConfig())


def test_a_hub_id_loads_from_the_hugging_face_cache_only(
    byte_model_dir: Path, hf_cache: Path
) -> None:
    with pytest.raises(ModelNotFoundError, match="hf download acme/tiny"):
        load_model("acme/tiny", weights=Int8WeightConfig())
    snapshot = hf_cache / "models--acme--tiny" / "snapshots" / "abc123"
    shutil.copytree(byte_model_dir, snapshot)
    (hf_cache / "models--acme--tiny" / "refs").mkdir()
    (hf_cache / "models--acme--tiny" / "refs" / "main").write_text("abc123")
    loaded = load_model("acme/tiny", weights=Int8WeightConfig())
    assert loaded.folder == snapshot and loaded.compressed == Int8WeightConfig()
