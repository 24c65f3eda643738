"""The train job ``memlens train`` runs: load a local model folder (or a memlens
compressed checkpoint: QLoRA), compose the techniques, train, save.

Saving writes beside ``--out`` and moves into place, so an interrupted run (Ctrl+C)
leaves nothing half-written; ``--out`` must not exist or be empty, so nothing is
overwritten either.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from memlens.engine.loading import load_model
from memlens.engine.tokens import TOKENIZER_FILES, load_codec
from memlens.engine.weights.checkpoint import save_compressed
from memlens.engine.weights.config import WeightConfig
from memlens.errors import UnsupportedArchitectureError, UsageError
from memlens.train.data import TokenData, read_training_text
from memlens.train.fake_quant import deployed_scheme
from memlens.train.loop import Progress, TrainConfig, TrainReport, train
from memlens.train.lora import LoraConfig, lora_, merge_lora_
from memlens.train.pruning import PruneConfig, add_gates, parameter_count, prune
from memlens.train.qat import export_, qat_

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainJob:
    """One ``memlens train`` run."""

    source: Path
    data: Path
    train: TrainConfig
    out: Path | None = None
    lora: LoraConfig | None = None
    qat: WeightConfig | None = None
    prune: PruneConfig | None = None


@dataclass(frozen=True)
class TrainResult:
    """The training report plus what was saved."""

    report: TrainReport
    out: str | None
    saved_as: str | None
    """``transformers`` (a model folder) or ``memlens`` (a compressed checkpoint)."""
    parameters_after: int
    """Parameters of the saved model (fewer after pruning)."""
    config_changes: dict[str, Any]
    """Config fields pruning changed, e.g. ``{"intermediate_size": 512}``."""

    def to_json(self) -> dict[str, Any]:
        """The CLI's ``--json`` form."""
        return {
            **self.report.to_json(),
            "out": self.out,
            "saved_as": self.saved_as,
            "parameters_after": self.parameters_after,
            "config_changes": self.config_changes,
        }


def check_out(out: Path | None) -> None:
    """UsageError when ``out`` exists and is not an empty folder (nothing is replaced)."""
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(
            f"--out {out} exists and is not empty: memlens train does not resume into or "
            "overwrite a folder; give a new one"
        )


def check_local_code(folder: Path) -> None:
    """UnsupportedArchitectureError when the model needs its repository's own code."""
    config = folder / "config.json"
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError):
        return  # the loader reports a missing or corrupt config in its own words
    if isinstance(data, dict) and data.get("auto_map"):
        raise UnsupportedArchitectureError(
            f"{folder} needs its own Python code (auto_map in config.json); memlens never "
            "runs a repository's code: use a model transformers implements"
        )


def _check_job(job: TrainJob, compressed: WeightConfig | None) -> None:
    if compressed is not None and job.lora is None:
        raise UsageError(
            f"{job.source} is a compressed checkpoint: train adapters on it with --lora (QLoRA)"
        )
    if compressed is not None and job.qat is None:
        deployed_scheme((16, 128), compressed)  # the export re-quantizes with this scheme
    if job.prune is not None and (job.qat is not None or compressed is not None):
        raise UsageError(
            "--prune works on a full-precision model: prune first, then train the pruned "
            "model with --qat or compress it"
        )


def run_train(job: TrainJob, on_step: Progress | None = None) -> TrainResult:
    """Run ``job``; see the module docstring."""
    check_out(job.out)
    check_local_code(job.source)
    text = read_training_text(job.data)
    loaded = load_model(job.source, torch.float32)
    if not loaded.causal:
        raise UnsupportedArchitectureError(f"{job.source} is not a causal LM; train needs one")
    _check_job(job, loaded.compressed)
    codec = load_codec(job.source)
    data = TokenData.from_text(text, codec, job.train.seq_len)
    model = loaded.model
    if job.lora is not None:
        lora_config = job.lora
        if loaded.compressed is not None:
            lora_config = replace(lora_config, dtype=torch.bfloat16)  # QLoRA: bf16 adapters
        lora_(model, lora_config)
    deploy = job.qat or loaded.compressed
    if job.qat is not None:
        qat_(model, job.qat)
    gates = add_gates(model, job.prune) if job.prune is not None else None
    report = train(model, data, job.train, gates, on_step)
    changes: dict[str, Any] = {}
    if deploy is not None:
        if job.qat is None:
            qat_(model, deploy)  # QLoRA: export re-quantizes base + adapter with the same scheme
        export_(model)
    else:
        merge_lora_(model)
        if gates is not None:
            before = model.config.to_dict()  # type: ignore[union-attr, operator]
            model = prune(model, gates)
            after = model.config.to_dict()  # type: ignore[union-attr, operator]
            changes = {k: v for k, v in after.items() if before.get(k) != v}
    saved_as = None
    if job.out is not None:
        saved_as = _save(model, deploy, job.source, job.out)
    return TrainResult(
        report=report,
        out=None if job.out is None else str(job.out),
        saved_as=saved_as,
        parameters_after=parameter_count(model),
        config_changes=changes,
    )


def _save(model: nn.Module, deploy: WeightConfig | None, source: Path, out: Path) -> str:
    """Write beside ``out``, then move into place; a Ctrl+C leaves no partial folder."""
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        if deploy is not None:
            save_compressed(model, deploy, partial)
            kind = "memlens"
        else:
            model.save_pretrained(partial, safe_serialization=True)  # type: ignore[operator]
            kind = "transformers"
        for name in TOKENIZER_FILES:
            if (source / name).is_file():
                shutil.copy2(source / name, partial / name)
        if out.exists():
            out.rmdir()  # empty (checked before training)
        os.replace(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    log.debug("saved %s to %s", kind, out)
    return kind
