"""Diagnostics of calls that build a module class of the file (``GPT(GPTConfig(...))``,
``Transformer.from_name("7B")``), with the same codes as loads' (one checker per code):

- ``fp32-load``: a float32 build of a model above 1B parameters;
- ``over-budget``: the build's weights and buffers alone exceed the memory budget (KV cache
  and activations come on top: a module class of the file has no formulas for them),
  naming the dtype that fits when a cast does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from lsprotocol import types

from memlens.lsp_server.analysis import ModelBuild
from memlens.lsp_server.features.diagnostics import FP32_WARNING_PARAMS, Problem
from memlens.units import format_bytes, format_count

if TYPE_CHECKING:
    from memlens.lsp_server.server import MemlensServer

BuildCheck = Callable[["MemlensServer", ModelBuild], Problem | None]
"""A check of one build."""
BUILD_CHECKS: dict[str, BuildCheck] = {}
"""The checks by diagnostic code, run in this order on every build."""
FIT_CANDIDATES = ("bf16",)
"""The casts the over-budget message tries, smallest change first."""


def _check(code: str) -> Callable[[BuildCheck], BuildCheck]:
    def add(check: BuildCheck) -> BuildCheck:
        BUILD_CHECKS[code] = check
        return check

    return add


def _floor(build: ModelBuild) -> str:
    return "≥ " if build.size.unknown else ""


@_check("fp32-load")
def _fp32_build(ls: MemlensServer, build: ModelBuild) -> Problem | None:
    size = build.size
    if size.dtype != "fp32" or size.params <= FP32_WARNING_PARAMS:
        return None
    return Problem(
        f"float32 build of a {_floor(build)}{format_count(size.params)}-parameter "
        f"{build.module}: {_floor(build)}{format_bytes(size.bytes)} of weights; bfloat16 "
        "halves it",
        types.DiagnosticSeverity.Warning,
        {"dtype": "bf16"},
    )


@_check("over-budget")
def _over_budget(ls: MemlensServer, build: ModelBuild) -> Problem | None:
    size = build.size
    budget = ls.settings.budget_bytes
    if size.bytes <= budget:
        return None
    fit = next(
        (
            (dtype, cast.bytes)
            for dtype in FIT_CANDIDATES
            if (cast := build.size_as(dtype)) is not None and cast.bytes <= budget
        ),
        None,
    )
    advice = (
        f"; {fit[0]} would need {format_bytes(fit[1])} and fits"
        if fit
        else "; it does not fit even as bf16"
    )
    return Problem(
        f"{build.module} needs {_floor(build)}{format_bytes(size.bytes)} for its "
        f"{size.dtype} weights alone (KV cache and activations come on top), over the "
        f"{format_bytes(budget)} memory budget{advice}",
        types.DiagnosticSeverity.Warning,
        {"fits": fit[0] if fit else None},
    )


def build_diagnostics(ls: MemlensServer, uri: str, build: ModelBuild) -> list[types.Diagnostic]:
    """Every diagnostic one build earns."""
    where = ls.to_lsp_range(uri, build.span)
    return [
        problem.diagnostic(where, code)
        for code, check in BUILD_CHECKS.items()
        if (problem := check(ls, build)) is not None
    ]


def _builds_diagnostics(ls: MemlensServer, uri: str) -> list[types.Diagnostic]:
    return [d for build in ls.analysis(uri).builds for d in build_diagnostics(ls, uri, build)]


def register(server: MemlensServer) -> None:
    """The builds' diagnostics, answered with the loads' (``diagnostics``)."""
    server.diagnostics_providers.append(_builds_diagnostics)
