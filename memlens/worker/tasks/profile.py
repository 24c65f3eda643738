"""``memlens.profile``: measured memory of a real load and a short generation.

With weights on disk (a local model folder or an HF-cache snapshot holding
``*.safetensors``) the model is loaded (never with remote code) and measured: bytes per
block from the loaded tensors, the KV cache and largest output of each block, and the
peak of a short generation (``memlens/engine/measure/profile_run.py``); ``"kv": "int8"`` (the
CLI's ``--kv`` syntax) decodes with memlens's compressed KV cache and reports its exact
bytes per layer. Without weights it returns the meta-device skeleton and says so.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memlens.errors import UsageError
from memlens.profiler.machine import fits, memory_pools
from memlens.profiler.tensors import FLOAT_DTYPES
from memlens.profiler.training import training_estimate
from memlens.profiler.training_config import config_from_json
from memlens.worker.methods import RequestContext, method
from memlens.worker.tasks.common import ModelRequest, weights_folder

if TYPE_CHECKING:
    from memlens.engine.kv.config import KVCacheConfig


def _positive(params: dict[str, Any], name: str, default: int, limit: int) -> int:
    value = params.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
        raise UsageError(f"'{name}' must be an integer between 1 and {limit}")
    return value


@method("memlens.profile")
def profile(params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
    """``{"kind": "profile", "model", "estimate", "measured" | None, "notes"}``; with a
    ``"train"`` configuration (TrainingConfig JSON) ``{"kind": "training-profile", …}``."""
    if "train" in params:
        return _training_profile(params, context)
    request = ModelRequest.from_params(params)
    prompt = _positive(params, "prompt_tokens", 64, 1 << 16)
    new = _positive(params, "new_tokens", 8, 1 << 14)
    kv = _kv_config(params)
    dtype = request.dtypes[0]
    if dtype not in FLOAT_DTYPES:
        raise UsageError("profile runs the model as loaded: use fp32, bf16 or fp16")
    context.progress(f"Resolving {request.model}", 2)
    resolved = request.resolve()
    from memlens.profiler.meta import exact_estimate

    [estimate] = exact_estimate(
        resolved.config, resolved.model, [dtype], context=prompt + new, batch=request.batch
    )
    report: dict[str, Any] = {
        "kind": "profile",
        "model": resolved.model,
        "estimate": estimate.to_json(),
        "measured": None,
        "notes": [],
    }
    folder = weights_folder(resolved)
    if folder is None:
        report["notes"].append(
            "weights are not on disk: this is the meta-device skeleton (exact shapes, "
            "nothing measured); point the load at a local folder with safetensors to measure"
        )
        return report
    report["measured"] = _measure(folder, dtype.torch_name, request.batch, prompt, new, kv, context)
    return report


def _training_profile(params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
    """The analytic training estimate and, with weights on disk, one measured fp32 step."""
    config = config_from_json(params["train"])
    request = ModelRequest.from_params({k: v for k, v in params.items() if k != "train"})
    context.progress(f"Resolving {request.model}", 2)
    resolved = request.resolve()
    estimate = training_estimate(resolved.config, resolved.model, config)
    estimate = dataclasses.replace(estimate, fits=fits(estimate.peak_bytes, memory_pools()))
    report: dict[str, Any] = {
        "kind": "training-profile",
        "model": resolved.model,
        "estimate": estimate.to_json(),
        "measured": None,
        "notes": [],
    }
    folder = weights_folder(resolved)
    if folder is None:
        report["notes"].append(
            "weights are not on disk: this is the analytic estimate only; point the load at "
            "a local folder with safetensors to measure a step"
        )
        return report
    import torch

    from memlens.engine.loading import load_model
    from memlens.profiler.training_step import measure_training_step

    context.progress(f"Loading weights from {folder}", 10)
    loaded = load_model(folder, torch.float32)
    context.check()

    def progress(message: str, percent: float) -> None:
        context.progress(message, int(percent))

    vocab = int(resolved.config["vocab_size"])
    measured = measure_training_step(loaded.model, config, vocab, progress)
    report["measured"] = measured.to_json()
    return report


def _kv_config(params: dict[str, Any]) -> KVCacheConfig | None:
    """``"kv"``: the compressed KV cache to decode with, in the CLI's ``--kv`` syntax."""
    text = params.get("kv")
    if text is None:
        return None
    if not isinstance(text, str):
        raise UsageError('\'kv\' must be a string such as "int8" or "int4:g32"')
    from memlens.engine.kv.config import parse_kv

    return parse_kv(text)


def _measure(
    folder: Path,
    torch_dtype: str,
    batch: int,
    prompt: int,
    new: int,
    kv: KVCacheConfig | None,
    context: RequestContext,
) -> dict[str, Any]:
    import torch

    from memlens.engine.loading import load_model
    from memlens.engine.measure.profile_run import profile_run

    context.progress(f"Loading weights from {folder}", 10)
    loaded = load_model(folder, getattr(torch, torch_dtype))
    context.check()

    def progress(message: str, percent: float) -> None:
        context.progress(message, int(percent))

    return profile_run(loaded, batch, prompt, new, progress, kv=kv).to_json()
