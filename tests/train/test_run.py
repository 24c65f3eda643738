"""The train job: each technique composes into a run that saves a model the engine loads;
bad inputs fail before anything is written, and an interrupted save leaves nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from memlens.engine.loading import load_model
from memlens.engine.weights.checkpoint import save_compressed
from memlens.engine.weights.config import Int8WeightConfig
from memlens.engine.weights.quantize import compress_
from memlens.errors import UnsupportedArchitectureError, UsageError
from memlens.profiler.estimate import analytic_estimate
from memlens.train.int8_activations import Int8ActivationConfig
from memlens.train.loop import TrainConfig
from memlens.train.lora import LoraConfig
from memlens.train.pruning import PruneConfig
from memlens.train.run import TrainJob, run_train
from tests.support.byte_model import write_byte_model
from tests.support.train_text import write_train_text

QUICK = TrainConfig(steps=2, batch_size=2, seq_len=32, lr=1e-3)


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    model = write_byte_model(tmp_path / "model")
    return model, write_train_text(tmp_path)


def test_lora_qat_int8_activations_8bit_adam_save_a_checkpoint(
    folders: tuple[Path, Path], tmp_path: Path
) -> None:
    model, data = folders
    train = TrainConfig(
        steps=2,
        batch_size=2,
        seq_len=32,
        lr=1e-3,
        optimizer="adamw8bit",
        grad_checkpointing=True,
        int8_activations=Int8ActivationConfig(),
    )
    job = TrainJob(model, data, train, tmp_path / "out", LoraConfig(r=4), Int8WeightConfig())
    result = run_train(job)
    assert result.saved_as == "memlens"
    assert result.report.trainable_parameters < result.report.parameters / 10
    assert result.report.optimizer_bytes > 0 and result.report.peak_step_bytes > 0
    loaded = load_model(tmp_path / "out")
    assert loaded.compressed == Int8WeightConfig()
    assert (tmp_path / "out" / "byte_tokenizer.json").is_file()
    assert not (tmp_path / "out.partial").exists()


def test_pruning_saves_a_smaller_transformers_model(
    folders: tuple[Path, Path], tmp_path: Path
) -> None:
    model, data = folders
    job = TrainJob(model, data, QUICK, tmp_path / "out", prune=PruneConfig(0.5))
    result = run_train(job)
    assert result.saved_as == "transformers"
    assert result.report.gate_sparsity is not None
    assert result.config_changes["num_attention_heads"] == 2
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    (estimate,) = analytic_estimate(config, "pruned")
    assert result.parameters_after == estimate.params < result.report.parameters
    loaded = load_model(tmp_path / "out", torch.float32)
    assert sum(p.numel() for p in loaded.model.parameters()) == estimate.params


def test_qlora_on_a_compressed_checkpoint(folders: tuple[Path, Path], tmp_path: Path) -> None:
    model, data = folders
    base = load_model(model, torch.float32).model
    compress_(base, Int8WeightConfig())
    save_compressed(base, Int8WeightConfig(), tmp_path / "int8")
    (tmp_path / "int8" / "byte_tokenizer.json").write_text('{"kind": "utf-8 bytes"}')
    job = TrainJob(tmp_path / "int8", data, QUICK, tmp_path / "out", LoraConfig(r=4))
    result = run_train(job)
    assert result.saved_as == "memlens"
    assert load_model(tmp_path / "out").compressed == Int8WeightConfig()
    with pytest.raises(UsageError, match="--lora"):
        run_train(TrainJob(tmp_path / "int8", data, QUICK))


def test_a_non_empty_out_is_refused_before_training(
    folders: tuple[Path, Path], tmp_path: Path
) -> None:
    model, data = folders
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("earlier run")
    with pytest.raises(UsageError, match="not empty"):
        run_train(TrainJob(model, data, QUICK, out, LoraConfig(r=4)))
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_a_model_with_remote_code_is_refused(folders: tuple[Path, Path]) -> None:
    model, data = folders
    config = json.loads((model / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_custom.CustomModel"}
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedArchitectureError, match="own Python code"):
        run_train(TrainJob(model, data, QUICK, lora=LoraConfig(r=4)))


def test_prune_with_qat_is_refused(folders: tuple[Path, Path]) -> None:
    model, data = folders
    job = TrainJob(model, data, QUICK, qat=Int8WeightConfig(), prune=PruneConfig(0.3))
    with pytest.raises(UsageError, match="prune first"):
        run_train(job)


def test_ctrl_c_while_saving_leaves_nothing(
    folders: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, data = folders

    def interrupted(*args: object, **kwargs: object) -> None:
        (tmp_path / "out.partial").mkdir(exist_ok=True)
        (tmp_path / "out.partial" / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr("memlens.train.run.save_compressed", interrupted)
    job = TrainJob(model, data, QUICK, tmp_path / "out", LoraConfig(r=4), Int8WeightConfig())
    with pytest.raises(KeyboardInterrupt):
        run_train(job)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
