"""Quick fixes that set or replace a load's dtype (adding ``import torch`` when needed)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from lsprotocol import types

from memlens.lsp_server.analysis import ModelLoad, Position, Span
from memlens.profiler.tensors import StorageDtype
from memlens.units import format_bytes

if TYPE_CHECKING:
    from memlens.lsp_server.server import MemlensServer

FIX_DTYPES = (StorageDtype.BF16, StorageDtype.FP16)
"""The dtypes quick fixes offer, the preferred one first."""


def dtype_edits(
    ls: MemlensServer, uri: str, load: ModelLoad, dtype: StorageDtype
) -> list[types.TextEdit]:
    """Edits that make ``load`` use ``dtype``: replace its dtype argument or add one, and
    ``import torch`` when no name is bound to torch (an alias like ``T`` is used as is)."""
    analysis = ls.analysis(uri)
    expression = f"{analysis.torch_name or 'torch'}.{dtype.torch_name}"
    edits: list[types.TextEdit] = []
    if load.dtype_span is not None:
        edits.append(
            types.TextEdit(range=ls.to_lsp_range(uri, load.dtype_span), new_text=expression)
        )
    elif load.insert_at is not None:
        at = ls.to_lsp(uri, load.insert_at)
        new_text = f"{load.insert_prefix}dtype={expression}"
        edits.append(types.TextEdit(range=types.Range(at, at), new_text=new_text))
    if analysis.torch_name is None:
        at = ls.to_lsp(uri, Position(analysis.import_line, 0))
        edits.insert(0, types.TextEdit(range=types.Range(at, at), new_text="import torch\n"))
    return edits


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
        for load in ls.analysis(uri).loads:
            if not (load.span.start <= wanted.end and wanted.start <= load.span.end):
                continue
            related = [d for d in ours if d.code in ("over-budget", "fp32-load")]
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
