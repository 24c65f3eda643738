"""``memlens.compress``: per-layer bytes before and after INT8/INT4, from exact shapes.

This is the plan the compressed-inference engine will execute; until it measures
quality (perplexity, per-layer error, tokens/s), those fields are null and the report
says ``measured: false``.
"""

from __future__ import annotations

from typing import Any

from memlens.errors import UsageError
from memlens.profiler.tensors import StorageDtype, check_group_size
from memlens.worker.protocol import RequestContext, method
from memlens.worker.tasks.common import ModelRequest


@method("memlens.compress")
def compress(params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
    """``{"kind": "compress", "config", "layers": [LayerReport], "ppl_before"...}``."""
    request = ModelRequest.from_params(params)
    scheme = StorageDtype(params.get("scheme", "int4"))
    if not scheme.is_quantized:
        raise UsageError("'scheme' must be int8 or int4")
    group_size = check_group_size(params.get("group_size", 128))
    source = request.dtypes[0]
    context.progress(f"Resolving {request.model}", 5)
    resolved = request.resolve()
    from memlens.profiler.meta import exact_spec

    context.progress("Reading exact shapes", 30)
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
        "notes": [
            *notes,
            "sizes are exact for memlens's storage format; quality and speed "
            "are measured once the compressed-inference engine runs this plan",
        ],
    }
