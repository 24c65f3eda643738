"""Diagnostics of model loads (pushed after a pause in typing, or pulled by clients that
support it), one checker per code:

- ``remote-code``: ``trust_remote_code=True`` runs code from the model repository;
- ``unresolved-model``: an id memlens cannot resolve offline, with how to fix it;
- ``fp32-load``: a float32 load of a model above 1B parameters;
- ``over-budget``: the load's total (weights + KV + activations) exceeds the memory budget,
  naming the smallest change that fits (bf16, then memlens INT8, then INT4).

Other features add diagnostics of their own through ``server.diagnostics_providers``
(``run_memory``); the pull handler here answers with all of them, computed once per
document version: a pull that names the previous result id of an unchanged document gets
an "unchanged" report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from lsprotocol import types

from memlens.lsp_server.analysis import LoadEstimate, ModelLoad
from memlens.lsp_server.features.labels import serving_label
from memlens.units import format_bytes, format_count

if TYPE_CHECKING:
    from memlens.lsp_server.server import MemlensServer

SOURCE = "memlens"
FP32_WARNING_PARAMS = 1_000_000_000
FIT_CANDIDATES = ("bf16", "int8", "int4")


@dataclass(frozen=True)
class Problem:
    """What a checker found; the runner turns it into a diagnostic on the load."""

    message: str
    severity: types.DiagnosticSeverity
    data: dict[str, object] | None = None

    def diagnostic(self, where: types.Range, code: str) -> types.Diagnostic:
        """This problem as memlens's diagnostic ``code`` over ``where``."""
        return types.Diagnostic(
            range=where,
            message=self.message,
            severity=self.severity,
            source=SOURCE,
            code=code,
            data=self.data,
        )


LoadCheck = Callable[["MemlensServer", str, ModelLoad, LoadEstimate], Problem | None]
"""A check of one load (in the document at a URI, with its analytic estimate)."""
LOAD_CHECKS: dict[str, LoadCheck] = {}
"""The checks by diagnostic code, run in this order on every load."""


def _check(code: str) -> Callable[[LoadCheck], LoadCheck]:
    def add(check: LoadCheck) -> LoadCheck:
        LOAD_CHECKS[code] = check
        return check

    return add


@_check("remote-code")
def _remote_code(
    ls: MemlensServer, uri: str, load: ModelLoad, result: LoadEstimate
) -> Problem | None:
    if not load.trust_remote_code:
        return None
    return Problem(
        "trust_remote_code=True runs Python code from the model repository on this "
        "machine; prefer a checkpoint transformers supports natively",
        types.DiagnosticSeverity.Warning,
    )


@_check("unresolved-model")
def _unresolved_model(
    ls: MemlensServer, uri: str, load: ModelLoad, result: LoadEstimate
) -> Problem | None:
    if not result.unresolved:
        return None
    return Problem(
        f"memlens cannot size this model offline: {result.error}",
        types.DiagnosticSeverity.Information,
    )


@_check("fp32-load")
def _fp32_load(
    ls: MemlensServer, uri: str, load: ModelLoad, result: LoadEstimate
) -> Problem | None:
    estimate = result.estimate
    if estimate is None or estimate.dtype != "fp32" or estimate.params <= FP32_WARNING_PARAMS:
        return None
    return Problem(
        f"float32 load of a {format_count(estimate.params)}-parameter model: "
        f"{format_bytes(estimate.weight_bytes)} of weights; bfloat16 halves it",
        types.DiagnosticSeverity.Warning,
        {"dtype": "bf16"},
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


@_check("over-budget")
def _over_budget(
    ls: MemlensServer, uri: str, load: ModelLoad, result: LoadEstimate
) -> Problem | None:
    estimate = result.estimate
    budget = ls.settings.budget_bytes
    if estimate is None or estimate.total_bytes <= budget:
        return None
    fit = _smallest_fit(ls, uri, load, budget)
    advice = (
        f"; {fit[0]} would need {format_bytes(fit[1])} and fits"
        if fit
        else "; it does not fit even as INT4"
    )
    return Problem(
        f"{estimate.model} at {estimate.dtype}: {serving_label(estimate)} "
        f"(weights {format_bytes(estimate.weight_bytes)}, KV cache "
        f"{format_bytes(estimate.kv_cache_bytes)} for {estimate.context} tokens, "
        f"activations {format_bytes(estimate.activations_bytes)}), over the "
        f"{format_bytes(budget)} memory budget{advice}",
        types.DiagnosticSeverity.Warning,
        {"fits": fit[0] if fit else None},
    )


def load_diagnostics(ls: MemlensServer, uri: str, load: ModelLoad) -> list[types.Diagnostic]:
    """Every diagnostic one model load earns."""
    result = ls.load_estimate(uri, load)
    where = ls.to_lsp_range(uri, load.span)
    return [
        problem.diagnostic(where, code)
        for code, check in LOAD_CHECKS.items()
        if (problem := check(ls, uri, load, result)) is not None
    ]


def _loads_diagnostics(ls: MemlensServer, uri: str) -> list[types.Diagnostic]:
    return [d for load in ls.analysis(uri).loads for d in load_diagnostics(ls, uri, load)]


def register(server: MemlensServer) -> None:
    """The model loads' diagnostics and ``textDocument/diagnostic`` (pull); pushing is
    scheduled by the document handlers."""
    server.diagnostics_providers.append(_loads_diagnostics)

    @server.feature(
        types.TEXT_DOCUMENT_DIAGNOSTIC,
        types.DiagnosticOptions(
            identifier=SOURCE, inter_file_dependencies=False, workspace_diagnostics=False
        ),
    )
    def pull(
        ls: MemlensServer, params: types.DocumentDiagnosticParams
    ) -> types.FullDocumentDiagnosticReport | types.UnchangedDocumentDiagnosticReport:
        uri = params.text_document.uri
        result_id = str(ls.version_results(uri).serial)
        if params.previous_result_id == result_id:
            return types.UnchangedDocumentDiagnosticReport(result_id=result_id)
        return types.FullDocumentDiagnosticReport(items=ls.diagnostics(uri), result_id=result_id)
