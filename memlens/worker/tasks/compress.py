"""``memlens.compress``: a measured ``CompressionReport`` when the weights and a tokenizer
are on disk; otherwise the plan, with exact per-layer bytes from the model's shapes.

A measured run compresses with the engine (``memlens/engine/compress_job.py``), measures
perplexity (or embedding cosine) and decode speed before and after, and writes the
checkpoint under the worker cache (``compressed/``), named in the report's ``out``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memlens.errors import UsageError
from memlens.profiler.configs import ResolvedConfig
from memlens.profiler.tensors import StorageDtype, check_group_size
from memlens.worker.cache import cache_dir
from memlens.worker.methods import RequestContext, method
from memlens.worker.tasks.common import ModelRequest, weights_folder

if TYPE_CHECKING:
    from memlens.engine.weights.config import WeightConfig


def _weights_spec(params: dict[str, Any]) -> str:
    """``"weights": "int4:g64"`` (the CLI's syntax), or the older scheme + group size."""
    if isinstance(params.get("weights"), str):
        return str(params["weights"])
    scheme = StorageDtype(params.get("scheme", "int4"))
    if not scheme.is_quantized:
        raise UsageError("'scheme' must be int8 or int4")
    if scheme is StorageDtype.INT8:
        return "int8"
    return f"int4:g{check_group_size(params.get('group_size', 128))}"


def _with_error_target(weights: WeightConfig, max_error: Any) -> WeightConfig:
    """``"max_error": 0.02`` sets auto's per-layer error target (other schemes have none)."""
    if max_error is None:
        return weights
    from memlens.engine.weights.config import AutoWeightConfig

    if not isinstance(weights, AutoWeightConfig):
        raise UsageError('\'max_error\' is auto\'s error target: use it with "weights": "auto"')
    if not isinstance(max_error, int | float) or isinstance(max_error, bool):
        raise UsageError("'max_error' must be a number between 0 and 1 (0.02 is 2%)")
    if not 0 < max_error < 1:
        raise UsageError(f"'max_error' must be between 0 and 1 (0.02 is 2%), got {max_error}")
    return dataclasses.replace(weights, max_error=float(max_error))


@method("memlens.compress")
def compress(params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
    """``{"kind": "compress", "config", "layers": [LayerReport], "ppl_before", …}``."""
    from memlens.engine.weights.config import parse_weights

    request = ModelRequest.from_params(params)
    weights = _with_error_target(parse_weights(_weights_spec(params)), params.get("max_error"))
    context.progress(f"Resolving {request.model}", 2)
    resolved = request.resolve()
    folder = weights_folder(resolved)
    if folder is not None and _has_tokenizer(folder):
        return _measured(folder, resolved.model, weights, context)
    why = (
        "weights are not on disk"
        if folder is None
        else f"{folder} has no tokenizer to read calibration text with"
    )
    return _plan(resolved, request, weights, f"{why}: sizes are exact, quality is not measured")


def _has_tokenizer(folder: Path) -> bool:
    from memlens.engine.tokens import TOKENIZER_FILES

    return any((folder / name).is_file() for name in TOKENIZER_FILES)


def _measured(
    folder: Path, model: str, weights: WeightConfig, context: RequestContext
) -> dict[str, Any]:
    from memlens.engine.compress_job import CompressJob, run_compress

    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
    label = weights.label().replace(":", "-")
    out = cache_dir() / "compressed" / f"{folder.name}-{key}-{label}"

    def progress(message: str, percent: float) -> None:
        context.progress(message, int(percent))

    report = run_compress(CompressJob(folder, weights, out=out), progress)
    return {**report.to_json(), "model": model}


def _plan(
    resolved: ResolvedConfig, request: ModelRequest, weights: WeightConfig, note: str
) -> dict[str, Any]:
    if weights.scheme not in ("int8", "int4"):
        raise UsageError(f"{weights.label()} is measured on the weights, and they are not here")
    scheme = StorageDtype(weights.scheme)
    group_size = getattr(weights, "group_size", 128)
    source = request.dtypes[0]
    from memlens.profiler.meta import exact_spec

    spec, _, notes = exact_spec(resolved.config)
    layers = [
        {
            "name": block.name,
            "scheme": scheme.value,
            "bytes_before": sum(t.nbytes(source, group_size) for t in block.tensors),
            "bytes_after": sum(t.nbytes(scheme, group_size) for t in block.tensors),
            "rel_error": None,
        }
        for block in spec.blocks
        if block.tensors
    ]
    return {
        "kind": "compress",
        "model": resolved.model,
        "config": {"scheme": scheme.value, "group_size": group_size, "from": source.value},
        "layers": layers,
        "ppl_before": None,
        "ppl_after": None,
        "tokens_per_s_before": None,
        "tokens_per_s_after": None,
        "measured": False,
        "notes": [*notes, note],
    }
