"""Diagnostics (pushed after a pause in typing, or pulled by clients that support it):

- ``over-budget``: the load's total (weights + KV + activations) exceeds the memory budget,
  naming the smallest change that fits (bf16, then memlens INT8, then INT4);
- ``fp32-load``: a float32 load of a model above 1B parameters;
- ``remote-code``: ``trust_remote_code=True`` runs code from the model repository;
- ``unresolved-model``: an id memlens cannot resolve offline, with how to fix it;
- ``run-memory``: a ``memlens run`` service from this script sampled more memory than the
  budget (``memory_alerts``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from lsprotocol import types

from memlens.lsp_server.findings import ModelLoad
from memlens.lsp_server.memory_alerts import run_memory_diagnostics
from memlens.units import format_bytes, format_count

if TYPE_CHECKING:
    from memlens.lsp_server.server import MemlensServer

SOURCE = "memlens"
FP32_WARNING_PARAMS = 1_000_000_000
FIT_CANDIDATES = ("bf16", "int8", "int4")


def _diagnostic(
    ls: MemlensServer,
    uri: str,
    load: ModelLoad,
    code: str,
    message: str,
    severity: types.DiagnosticSeverity,
    data: dict[str, object] | None = None,
) -> types.Diagnostic:
    return types.Diagnostic(
        range=ls.to_lsp_range(uri, load.span),
        message=message,
        severity=severity,
        source=SOURCE,
        code=code,
        data=data,
    )


def _smallest_fit(
    ls: MemlensServer, uri: str, load: ModelLoad, budget: int
) -> tuple[str, int] | None:
    for dtype in FIT_CANDIDATES:
        quantized = dtype in ("int8", "int4")
        candidate = replace(load, quantization=dtype if quantized else None)
        estimate = ls.load_estimate(uri, candidate, None if quantized else dtype).estimate
        if estimate is not None and estimate.total_bytes <= budget:
            return dtype, estimate.total_bytes
    return None


def load_diagnostics(ls: MemlensServer, uri: str, load: ModelLoad) -> list[types.Diagnostic]:
    """Every diagnostic one model load earns."""
    found: list[types.Diagnostic] = []
    if load.trust_remote_code:
        found.append(
            _diagnostic(
                ls,
                uri,
                load,
                "remote-code",
                "trust_remote_code=True runs Python code from the model repository on this "
                "machine; prefer a checkpoint transformers supports natively",
                types.DiagnosticSeverity.Warning,
            )
        )
    result = ls.load_estimate(uri, load)
    if result.unresolved:
        found.append(
            _diagnostic(
                ls,
                uri,
                load,
                "unresolved-model",
                f"memlens cannot size this model offline: {result.error}",
                types.DiagnosticSeverity.Information,
            )
        )
    estimate = result.estimate
    if estimate is None:
        return found
    if estimate.dtype == "fp32" and estimate.params > FP32_WARNING_PARAMS:
        found.append(
            _diagnostic(
                ls,
                uri,
                load,
                "fp32-load",
                f"float32 load of a {format_count(estimate.params)}-parameter model: "
                f"{format_bytes(estimate.weight_bytes)} of weights; bfloat16 halves it",
                types.DiagnosticSeverity.Warning,
                {"dtype": "bf16"},
            )
        )
    budget = ls.settings.budget_bytes
    if estimate.total_bytes > budget:
        fit = _smallest_fit(ls, uri, load, budget)
        advice = (
            f"; {fit[0]} would need {format_bytes(fit[1])} and fits"
            if fit
            else "; it does not fit even as INT4"
        )
        found.append(
            _diagnostic(
                ls,
                uri,
                load,
                "over-budget",
                f"{estimate.model} needs ≈ {format_bytes(estimate.total_bytes)} "
                f"at {estimate.dtype} "
                f"(weights {format_bytes(estimate.weight_bytes)}, KV cache "
                f"{format_bytes(estimate.kv_cache_bytes)} for {estimate.context} tokens, "
                f"activations {format_bytes(estimate.activations_bytes)}), over the "
                f"{format_bytes(budget)} memory budget{advice}",
                types.DiagnosticSeverity.Warning,
                {"fits": fit[0] if fit else None},
            )
        )
    return found


def diagnostics_for(ls: MemlensServer, uri: str) -> list[types.Diagnostic]:
    """All memlens diagnostics of a document's current version."""
    found = [d for load in ls.analysis(uri).loads for d in load_diagnostics(ls, uri, load)]
    return found + run_memory_diagnostics(ls, uri)


def register(server: MemlensServer) -> None:
    """``textDocument/diagnostic`` (pull); pushing is scheduled by the document handlers."""

    @server.feature(
        types.TEXT_DOCUMENT_DIAGNOSTIC,
        types.DiagnosticOptions(
            identifier=SOURCE, inter_file_dependencies=False, workspace_diagnostics=False
        ),
    )
    def pull(
        ls: MemlensServer, params: types.DocumentDiagnosticParams
    ) -> types.FullDocumentDiagnosticReport:
        return types.FullDocumentDiagnosticReport(
            items=diagnostics_for(ls, params.text_document.uri)
        )
