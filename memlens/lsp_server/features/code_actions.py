"""Quick fixes that set or replace the dtype of a load or of a call that builds a module
class of the file (adding ``import torch`` when needed), or compress a loaded model."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from lsprotocol import types

from memlens.lsp_server.analysis import ModelBuild, ModelLoad, Position, Span
from memlens.profiler.tensors import StorageDtype
from memlens.units import format_bytes, format_count

if TYPE_CHECKING:
    from memlens.lsp_server.server import MemlensServer

FIX_DTYPES = (StorageDtype.BF16, StorageDtype.FP16)
"""The dtypes quick fixes offer, the preferred one first."""


def _torch_dtype(
    ls: MemlensServer, uri: str, dtype: StorageDtype
) -> tuple[str, list[types.TextEdit]]:
    """``torch.bfloat16`` as the document spells torch (an alias like ``T`` is used as is),
    with the edit that adds ``import torch`` when no name is bound to torch."""
    analysis = ls.analysis(uri)
    if analysis.torch_name is not None:
        return f"{analysis.torch_name}.{dtype.torch_name}", []
    at = ls.to_lsp(uri, Position(analysis.import_line, 0))
    return f"torch.{dtype.torch_name}", [
        types.TextEdit(range=types.Range(at, at), new_text="import torch\n")
    ]


def dtype_edits(
    ls: MemlensServer, uri: str, load: ModelLoad, dtype: StorageDtype
) -> list[types.TextEdit]:
    """Edits that make ``load`` use ``dtype``: replace its dtype argument or add one, and
    ``import torch`` when no name is bound to torch."""
    expression, edits = _torch_dtype(ls, uri, dtype)
    if load.dtype_span is not None:
        edits.append(
            types.TextEdit(range=ls.to_lsp_range(uri, load.dtype_span), new_text=expression)
        )
    elif load.insert_at is not None:
        at = ls.to_lsp(uri, load.insert_at)
        new_text = f"{load.insert_prefix}dtype={expression}"
        edits.append(types.TextEdit(range=types.Range(at, at), new_text=new_text))
    return edits


def build_dtype_edits(
    ls: MemlensServer, uri: str, build: ModelBuild, dtype: StorageDtype
) -> list[types.TextEdit]:
    """Edits that cast what ``build`` makes to ``dtype``: ``.to(torch.bfloat16)`` chained
    on the call (in place of a chained ``.half()``, or the dtype a chained ``.to(...)``
    names), and ``import torch`` when no name is bound to torch."""
    expression, edits = _torch_dtype(ls, uri, dtype)
    new_text = build.cast.template.format(dtype=expression)
    return [*edits, types.TextEdit(range=ls.to_lsp_range(uri, build.cast.span), new_text=new_text)]


ENGINE_CONFIGS = {"int8": "Int8WeightConfig()", "int4": "Int4WeightConfig(group_size=128)"}


def engine_edits(ls: MemlensServer, uri: str, load: ModelLoad, scheme: str) -> list[types.TextEdit]:
    """Compress the loaded model in place right after its load statement:
    ``compress_(model, Int8WeightConfig())``, importing both from ``memlens.engine``."""
    assert load.target is not None
    analysis = ls.analysis(uri)
    lines = ls.lines(uri)
    statement_line = lines[load.span.start.line]
    indent = statement_line[: len(statement_line) - len(statement_line.lstrip())]
    config = ENGINE_CONFIGS[scheme]
    end = ls.to_lsp(uri, Position(load.span.end.line, len(lines[load.span.end.line])))
    at_import = ls.to_lsp(uri, Position(analysis.import_line, 0))
    name = config.split("(")[0]
    return [
        types.TextEdit(
            range=types.Range(at_import, at_import),
            new_text=f"from memlens.engine import {name}, compress_\n",
        ),
        types.TextEdit(
            range=types.Range(end, end), new_text=f"\n{indent}compress_({load.target}, {config})"
        ),
    ]


def _engine_actions(
    ls: MemlensServer, uri: str, load: ModelLoad, related: list[types.Diagnostic]
) -> list[types.CodeAction]:
    if load.target is None or load.loader == "pipeline" or load.quantization is not None:
        return []
    actions = []
    for scheme in ENGINE_CONFIGS:
        estimate = ls.load_estimate(uri, replace(load, quantization=scheme)).estimate
        size = f" (≈ {format_bytes(estimate.total_bytes)})" if estimate else ""
        actions.append(
            types.CodeAction(
                title=f"memlens: compress the weights to {scheme.upper()} after loading{size}",
                kind=types.CodeActionKind.QuickFix,
                diagnostics=related or None,
                edit=types.WorkspaceEdit(changes={uri: engine_edits(ls, uri, load, scheme)}),
            )
        )
    return actions


def _build_actions(
    ls: MemlensServer, uri: str, build: ModelBuild, related: list[types.Diagnostic]
) -> list[types.CodeAction]:
    actions = []
    for dtype in FIX_DTYPES:
        size = build.size_as(dtype)
        if size is None:
            continue
        floor = "≥ " if size.unknown else ""
        actions.append(
            types.CodeAction(
                title=(
                    f"memlens: cast the built {build.module} to torch.{dtype.torch_name} "
                    f"({floor}{format_count(size.params)} params · "
                    f"{floor}{format_bytes(size.bytes)})"
                ),
                kind=types.CodeActionKind.QuickFix,
                diagnostics=related or None,
                is_preferred=dtype == StorageDtype.BF16 and bool(related),
                edit=types.WorkspaceEdit(changes={uri: build_dtype_edits(ls, uri, build, dtype)}),
            )
        )
    return actions


def register(server: MemlensServer) -> None:
    """``textDocument/codeAction``."""

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
    )
    def code_actions(ls: MemlensServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        wanted = Span(ls.from_lsp(uri, params.range.start), ls.from_lsp(uri, params.range.end))
        ours = [d for d in params.context.diagnostics if d.source == "memlens"]
        actions: list[types.CodeAction] = []
        related = [d for d in ours if d.code in ("over-budget", "fp32-load")]
        for build in ls.analysis(uri).builds:
            if build.span.start <= wanted.end and wanted.start <= build.span.end:
                actions.extend(_build_actions(ls, uri, build, related))
        for load in ls.analysis(uri).loads:
            if not (load.span.start <= wanted.end and wanted.start <= load.span.end):
                continue
            actions.extend(_engine_actions(ls, uri, load, related))
            if load.quantization is not None or (load.double_star and load.dtype_span is None):
                continue  # **kwargs may already carry a dtype: adding one could clash
            for dtype in FIX_DTYPES:
                if load.dtype == dtype:
                    continue
                estimate = ls.load_estimate(uri, load, dtype).estimate
                size = f" (≈ {format_bytes(estimate.total_bytes)})" if estimate else ""
                actions.append(
                    types.CodeAction(
                        title=f"memlens: load in torch.{dtype.torch_name}{size}",
                        kind=types.CodeActionKind.QuickFix,
                        diagnostics=related or None,
                        is_preferred=dtype == StorageDtype.BF16 and bool(related),
                        edit=types.WorkspaceEdit(changes={uri: dtype_edits(ls, uri, load, dtype)}),
                    )
                )
        return actions
