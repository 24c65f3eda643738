"""``memlens/compressOptions``: the schemes the Compress… quick pick offers for one model
load, each with the weights' estimated bytes after it (the whole model, embeddings and
norms included, at the load's float dtype where a scheme leaves them).

Params ``{"uri", "line"}``; result ``{"model", "before_bytes", "before_text", "options":
[{"weights", "max_error", "label", "bytes", "text", "detail", "recommended"}]}``. INT4 is
offered at every group size, each saying how many matrices it holds (a matrix whose input
width the group does not divide stays INT8); the largest group size that holds them all is
recommended. ``weights`` and ``max_error`` are what ``memlens.compress``'s third argument
takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from memlens.errors import MemlensError, UsageError
from memlens.lsp_server.analysis.estimates import storage_dtype
from memlens.lsp_server.features.commands import runnable
from memlens.profiler.architectures import ArchitectureSpec, describe
from memlens.profiler.estimate import weight_bytes
from memlens.profiler.tensors import (
    DEFAULT_GROUP_SIZE,
    VALID_GROUP_SIZES,
    StorageDtype,
    TensorKind,
    int4_fits,
)
from memlens.units import format_bytes

if TYPE_CHECKING:
    from memlens.lsp_server.server import MemlensServer

COMPRESS_OPTIONS_REQUEST = "memlens/compressOptions"
AUTO_ERROR_TARGETS = (0.01, 0.02, 0.05)
"""The per-layer relative output errors ``auto`` is offered with."""


@dataclass(frozen=True)
class CompressOption:
    """One quick-pick entry."""

    weights: str
    """``memlens compress --weights`` syntax: ``int8``, ``int4:g64``, ``auto``."""
    max_error: float | None
    label: str
    bytes: int | None
    """Estimated weight bytes after compression; None where only a run can tell (auto)."""
    text: str
    detail: str
    recommended: bool = False


def int4_coverage(spec: ArchitectureSpec, group_size: int) -> tuple[int, int, list[int]]:
    """(matrices INT4 holds, all matrices, the input widths it cannot) at ``group_size``."""
    matrices = [t for b in spec.blocks for t in b.tensors if t.kind is TensorKind.MATRIX]
    missed = [t for t in matrices if not int4_fits(t.out_features, t.in_features, group_size)]
    widths = sorted({t.in_features for t in missed})
    return len(matrices) - len(missed), len(matrices), widths


def compress_options(spec: ArchitectureSpec, source: StorageDtype) -> list[CompressOption]:
    """INT4 at each group size (those holding every matrix first), INT8, then auto."""
    before = weight_bytes(spec, source, DEFAULT_GROUP_SIZE)
    int4: list[CompressOption] = []
    coverage = {g: int4_coverage(spec, g) for g in VALID_GROUP_SIZES}
    best = max((g for g, (held, total, _) in coverage.items() if held == total), default=None)
    for group in sorted(VALID_GROUP_SIZES, reverse=True):
        held, total, widths = coverage[group]
        size = weight_bytes(spec, StorageDtype.INT4, group)
        if held == total:
            detail = f"all {total} matrices INT4"
        else:
            shown = ", ".join(str(w) for w in widths[:3]) + ("…" if len(widths) > 3 else "")
            detail = (
                f"{total - held} of {total} matrices stay INT8: width {shown} is not a "
                f"multiple of {group}"
            )
        int4.append(
            CompressOption(
                f"int4:g{group}",
                None,
                f"INT4, group {group}",
                size,
                _saving(size, before),
                detail,
                recommended=group == best,
            )
        )
    int4.sort(key=lambda o: (not o.recommended, "stay INT8" in o.detail))
    int8_size = weight_bytes(spec, StorageDtype.INT8, DEFAULT_GROUP_SIZE)
    options = [
        *int4,
        CompressOption(
            "int8", None, "INT8", int8_size, _saving(int8_size, before), "every matrix INT8"
        ),
    ]
    for target in AUTO_ERROR_TARGETS:
        options.append(
            CompressOption(
                "auto",
                target,
                f"Auto, error ≤ {target:.0%}",
                None,
                "measured per layer",
                "per layer, the smallest scheme whose output error on calibration text is "
                f"at most {target:.0%} (needs the weights on disk)",
            )
        )
    return options


def _saving(after: int, before: int) -> str:
    return f"≈ {format_bytes(after)} (from {format_bytes(before)})"


def document_options(ls: MemlensServer, uri: str, line: int) -> dict[str, Any]:
    """The options for the load on ``line``; UsageError when there is none to compress."""
    if uri not in ls.workspace.text_documents:
        raise UsageError(f"{uri} is not open")
    load = next((ld for ld in ls.analysis(uri).loads if ld.span.start.line == line), None)
    if load is None or not runnable(load) or load.model_ref is None:
        raise UsageError(f"no model load with a static id on line {line + 1}")
    try:
        resolved = ls.estimator.resolve(load.model_ref, ls.document_dir(uri))
        spec = describe(resolved.config, source=resolved.model)
    except MemlensError as exc:
        raise UsageError(f"{load.model_ref}: {exc}") from exc
    source = storage_dtype(load, resolved.config)[0].compute_dtype
    options = compress_options(spec, source)
    before = weight_bytes(spec, source, DEFAULT_GROUP_SIZE)
    return {
        "model": resolved.model,
        "before_bytes": before,
        "before_text": format_bytes(before),
        "options": [vars(o) for o in options],
    }


def register(server: MemlensServer) -> None:
    """The ``memlens/compressOptions`` request."""

    @server.feature(COMPRESS_OPTIONS_REQUEST)
    def options(ls: MemlensServer, params: Any) -> dict[str, Any]:
        if isinstance(params, dict):
            uri, line = params.get("uri"), params.get("line")
        else:
            uri, line = getattr(params, "uri", None), getattr(params, "line", None)
        if not isinstance(uri, str) or not isinstance(line, int) or isinstance(line, bool):
            raise UsageError('params must be {"uri": "<document uri>", "line": <0-based line>}')
        return document_options(ls, uri, line)
