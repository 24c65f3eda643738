"""The compress job both ``memlens compress`` and the worker's ``memlens.compress`` run:
load, measure the baseline, plan, compress, measure again, save; and the
``CompressionReport`` (DESIGN.md §4) it returns: what the compression saved and what it
cost.

Progress goes to ``on_progress(message, percent)``; the caller draws it (a rich bar on
the CLI, LSP work-done progress through the worker).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from memlens.engine.loading import LoadedModel, load_model
from memlens.engine.measure.quality import mean_cosine, perplexity, sentence_embeddings
from memlens.engine.measure.speed import decode_speed
from memlens.engine.measure.texts import calibration_text, evaluation_text
from memlens.engine.tokens import (
    CHAT_TEMPLATES_DIR,
    COMPANION_FILES,
    HuggingFaceCodec,
    TextCodec,
    load_codec,
)
from memlens.engine.weights.checkpoint import save_compressed
from memlens.engine.weights.config import AutoWeightConfig, WeightConfig, config_to_json
from memlens.engine.weights.quantize import compress_, resolve_plan
from memlens.engine.weights.sensitivity import LayerChoice, evaluate_plan, plan_auto
from memlens.errors import UsageError
from memlens.profiler.measure import module_bytes

JobProgress = Callable[[str, float], None]
"""``(message, percent 0–100)``."""
CountedProgress = Callable[[int, int], None]
"""``(done, total)`` of a counted step."""
SPEED_PROMPT_TOKENS = 32
SPEED_NEW_TOKENS = 16
MAX_SENTENCES = 32


@dataclass(frozen=True)
class CompressJob:
    """One compression run of a local model folder."""

    source: Path
    weights: WeightConfig
    out: Path | None = None
    """Where to write the compressed checkpoint (None: measure only)."""
    calibration: str | None = None
    """Calibration text (default: stdlib source, ``memlens/engine/measure/texts.py``)."""
    evaluation: str | None = None
    """Held-out text for perplexity (default: the folder's heldout.txt or stdlib source)."""
    calibration_tokens: int = 512
    evaluation_tokens: int = 4096
    measure_speed: bool = True
    dtype: torch.dtype = torch.bfloat16
    """What the uncompressed model and the layers left as they are run in."""


@dataclass(frozen=True)
class CompressionReport:
    """Measured before and after one compression run. Bytes are bytes; speeds are
    decode tokens per second at batch 1; quality is perplexity for causal LMs and the mean
    cosine of sentence embeddings for encoders (the other is None)."""

    model: str
    config: dict[str, Any]
    layers: tuple[LayerChoice, ...]
    weight_bytes_before: int
    weight_bytes_after: int
    ppl_before: float | None = None
    ppl_after: float | None = None
    embedding_cosine: float | None = None
    tokens_per_s_before: float | None = None
    tokens_per_s_after: float | None = None
    out: str | None = None
    """Where the compressed checkpoint was written."""
    notes: tuple[str, ...] = field(default=())
    evaluation_tokens: int = 0
    """Tokens of held-out text the perplexities are measured on."""
    speed_tokens: tuple[int, int] = (0, 0)
    """``(prompt, new)`` tokens of the decode-speed runs; (0, 0) when not measured."""

    @property
    def ppl_delta(self) -> float | None:
        """Relative perplexity change (0.01 = 1% worse)."""
        if self.ppl_before is None or self.ppl_after is None:
            return None
        return self.ppl_after / self.ppl_before - 1

    def to_json(self) -> dict[str, Any]:
        """The worker's and the CLI's ``--json`` form (``kind`` and ``measured`` added)."""
        data = asdict(self)
        data["ppl_delta"] = self.ppl_delta
        return {"kind": "compress", "measured": True, **data}


def _ids(codec: TextCodec, text: str, limit: int) -> torch.Tensor:
    ids = codec.encode(text)[:limit]
    if len(ids) < 2:
        raise UsageError("the text gives fewer than two tokens")
    return torch.tensor(ids, dtype=torch.long)


def _max_positions(model: nn.Module) -> int:
    config = getattr(model, "config", None)
    return int(getattr(config, "max_position_embeddings", None) or 2048)


@dataclass
class _Quality:
    """Quality and speed of the model as it is now."""

    ppl: float | None = None
    embeddings: torch.Tensor | None = None
    tokens_per_s: float | None = None


def _counted(report: JobProgress, label: str, start: float, end: float) -> CountedProgress:
    """Progress of a counted step (``label: 3 of 16``) between two percentages."""

    def step(done: int, total: int) -> None:
        report(f"{label}: {done} of {total}", start + (end - start) * done / max(total, 1))

    return step


def _measure(
    loaded: LoadedModel,
    codec: TextCodec,
    evaluation: torch.Tensor,
    sentences: list[str],
    speed: bool,
    stage: tuple[str, float, float, JobProgress],
) -> _Quality:
    """Quality (and speed) of the model as it is now; ``stage`` is the phase's name, its
    start and end percentages and where progress goes."""
    name, start, end, report = stage
    model = loaded.model
    if loaded.causal:
        window = min(256, _max_positions(model))
        middle = start + (end - start) * (0.6 if speed else 1.0)
        label = f"{name}: perplexity, windows of {window} tokens"
        ppl = perplexity(model, evaluation, window, _counted(report, label, start, middle))
        if not speed:
            return _Quality(ppl=ppl)
        report(f"{name}: decode speed, {SPEED_NEW_TOKENS} tokens", middle)
        tokens_per_s = decode_speed(model, SPEED_PROMPT_TOKENS, SPEED_NEW_TOKENS, repeats=1)[1]
        return _Quality(ppl=ppl, tokens_per_s=tokens_per_s)
    if isinstance(codec, HuggingFaceCodec):
        report(f"{name}: embeddings of {len(sentences)} sentences", start)
        return _Quality(embeddings=sentence_embeddings(model, codec.tokenizer, sentences))
    return _Quality()


def run_compress(job: CompressJob, on_progress: JobProgress | None = None) -> CompressionReport:
    """Run ``job``; see the module docstring."""
    report = on_progress or (lambda message, percent: None)
    report(f"Loading {job.source}", 2)
    loaded = load_model(job.source, job.dtype)
    if loaded.compressed is not None:
        raise UsageError(f"{job.source} is already compressed ({loaded.compressed.label()})")
    codec = load_codec(job.source)
    model = loaded.model
    limit = _max_positions(model)
    calibration = _ids(
        codec, job.calibration or calibration_text(), min(job.calibration_tokens, limit)
    )[None]
    eval_text = job.evaluation or evaluation_text(loaded.folder)
    evaluation = _ids(codec, eval_text, job.evaluation_tokens)
    sentences = [line.strip()[:200] for line in eval_text.splitlines() if line.strip()][
        :MAX_SENTENCES
    ]
    before = _measure(
        loaded,
        codec,
        evaluation,
        sentences,
        job.measure_speed,
        ("Measuring the uncompressed model", 10, 30, report),
    )
    bytes_before = module_bytes(model)

    def planning(message: str, done: int, total: int) -> None:
        report(message, 30 + 40 * done / max(total, 1))

    report("Measuring per-layer errors on calibration text", 30)
    if isinstance(job.weights, AutoWeightConfig):
        plan = plan_auto(model, job.weights, calibration, planning)
        applied: WeightConfig = plan.config
        layers = plan.layers
    else:
        applied = job.weights
        layers = tuple(evaluate_plan(model, resolve_plan(model, applied), calibration, planning))
    report("Compressing", 70)
    compress_(model, applied, calibration)
    after = _measure(
        loaded,
        codec,
        evaluation,
        sentences,
        job.measure_speed,
        ("Measuring the compressed model", 75, 95, report),
    )
    notes = []
    if isinstance(job.weights, AutoWeightConfig):
        notes.append(f"auto plan: {_plan_summary(layers)}")
    if job.out is not None:
        report(f"Saving to {job.out}", 95)
        _save(model, applied, job.source, job.out)
    report("Done", 100)
    return CompressionReport(
        model=str(job.source),
        config=config_to_json(job.weights) or {},
        layers=layers,
        weight_bytes_before=bytes_before,
        weight_bytes_after=module_bytes(model),
        ppl_before=before.ppl,
        ppl_after=after.ppl,
        embedding_cosine=(
            mean_cosine(before.embeddings, after.embeddings)
            if before.embeddings is not None and after.embeddings is not None
            else None
        ),
        tokens_per_s_before=before.tokens_per_s,
        tokens_per_s_after=after.tokens_per_s,
        out=None if job.out is None else str(job.out),
        notes=tuple(notes),
        evaluation_tokens=int(evaluation.numel()) if loaded.causal else 0,
        speed_tokens=(SPEED_PROMPT_TOKENS, SPEED_NEW_TOKENS)
        if loaded.causal and job.measure_speed
        else (0, 0),
    )


def _plan_summary(layers: tuple[LayerChoice, ...]) -> str:
    counts: dict[str, int] = {}
    for layer in layers:
        counts[layer.scheme] = counts.get(layer.scheme, 0) + 1
    return ", ".join(f"{count}× {scheme}" for scheme, count in sorted(counts.items()))


def _save(model: nn.Module, config: WeightConfig, source: Path, out: Path) -> None:
    """Write beside ``out`` and move into place, so a crash never leaves new weights next
    to old metadata; what was at ``out`` (an empty folder, or the worker's previous
    result for the same model) is replaced."""
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    save_compressed(model, config, partial)
    _copy_companions(source, partial)
    if out.exists():
        shutil.rmtree(out)
    os.replace(partial, out)


def _copy_companions(source: Path, out: Path) -> None:
    """Copy the tokenizer, chat template and generation files ``source`` has into ``out``
    (without them ``memlens chat`` on the copy would lose the chat template)."""
    for name in COMPANION_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, out / name)
    if (source / CHAT_TEMPLATES_DIR).is_dir():
        shutil.copytree(source / CHAT_TEMPLATES_DIR, out / CHAT_TEMPLATES_DIR)
