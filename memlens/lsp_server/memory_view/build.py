"""``build_memory_view``: a worker result → the memory view's payload, by the result's
``kind`` (one builder module per family of reports)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from memlens.errors import MalformedReportError
from memlens.lsp_server.memory_view.inference import compress_view, estimate_view, profile_view
from memlens.lsp_server.memory_view.payload import Budget, MemoryView
from memlens.lsp_server.memory_view.reading import record, string
from memlens.lsp_server.memory_view.training import training_view
from memlens.units import format_bytes

_BUILDERS: dict[str, Callable[[Mapping[str, Any]], MemoryView]] = {
    "profile": profile_view,
    "estimate": estimate_view,
    "compress": compress_view,
    "training-profile": training_view,
}


def build_memory_view(result: Any, budget_bytes: int | None) -> MemoryView:
    """The view of one worker result; ``budget_bytes`` draws the budget line (None: none).
    Raises MalformedReportError naming the first field it cannot draw."""
    report = record(result, "report")
    kind = string(report, "kind", "report")
    build = _BUILDERS.get(kind)
    if build is None:
        raise MalformedReportError(f'report.kind "{kind}" is not one of {", ".join(_BUILDERS)}')
    view = build(report)
    budget = None
    if budget_bytes is not None:
        exceeded = any(bar.total_bytes > budget_bytes for bar in view.totals)
        budget = Budget(budget_bytes, format_bytes(budget_bytes), exceeded)
    return dataclasses.replace(view, budget=budget)
