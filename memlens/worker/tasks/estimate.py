"""``memlens.estimate``: the exact (meta-device) estimate, cached on disk."""

from __future__ import annotations

from typing import Any

from memlens.worker import cache
from memlens.worker.methods import RequestContext, method
from memlens.worker.tasks.common import ModelRequest


@method("memlens.estimate")
def estimate(params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
    """``{"kind": "estimate", "model", "estimates": [MemoryEstimate...], "cached"}``."""
    request = ModelRequest.from_params(params)
    context.progress(f"Resolving {request.model}", 5)
    resolved = request.resolve()
    options = {
        "dtypes": [d.value for d in request.dtypes],
        "context": request.context,
        "batch": request.batch,
    }
    key = cache.cache_key("estimate", resolved.config, options)
    if (hit := cache.load(key)) is not None:
        return {**hit, "cached": True}
    context.progress("Building the model on the meta device", 20)
    from memlens.profiler.meta import exact_estimate

    estimates = exact_estimate(
        resolved.config,
        resolved.model,
        request.dtypes,
        context=request.context,
        batch=request.batch,
    )
    context.check()
    result = {
        "kind": "estimate",
        "model": resolved.model,
        "estimates": [e.to_json() for e in estimates],
    }
    cache.store(key, result)
    return {**result, "cached": False}
