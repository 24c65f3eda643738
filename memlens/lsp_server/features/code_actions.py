"""Quick fixes that set or replace a load's dtype (adding ``import torch`` when needed)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from lsprotocol import types

from memlens.lsp_server.findings import ModelLoad, Position, Span
from memlens.units import format_bytes

if TYPE_CHECKING:
    from memlens.lsp_server.server import MemlensServer

_TOP_IMPORT = re.compile(r"^(import|from)\s+(?P<module>[\w.]+)", re.MULTILINE)
DTYPE_EXPRESSIONS = {"bf16": "torch.bfloat16", "fp16": "torch.float16"}


def binds_torch(source: str) -> bool:
    """Whether a top-level ``import`` binds the name ``torch`` (``import torch``,
    ``import torch.nn``, ``import os, torch``; not ``import torch.nn as nn``)."""
    for line in source.splitlines():
        if not line.startswith("import "):
            continue
        for item in line.removeprefix("import ").split("#")[0].split(","):
            name, _, alias = item.strip().partition(" as ")
            if (alias.strip() or name.split(".")[0]) == "torch" and (not alias or name == "torch"):
                return True
    return False


def _import_torch_edit(ls: MemlensServer, uri: str, source: str) -> types.TextEdit | None:
    """``import torch`` before the first import (after ``__future__``), unless bound."""
    if binds_torch(source):
        return None
    line = 0
    for match in _TOP_IMPORT.finditer(source):
        line = source.count("\n", 0, match.start())
        if match["module"] != "__future__":
            break
        line += 1
    at = ls.to_lsp(uri, Position(line, 0))
    return types.TextEdit(range=types.Range(at, at), new_text="import torch\n")


def dtype_edits(ls: MemlensServer, uri: str, load: ModelLoad, dtype: str) -> list[types.TextEdit]:
    """Edits that make ``load`` use ``dtype``: replace its dtype argument or add one."""
    expression = DTYPE_EXPRESSIONS[dtype]
    edits: list[types.TextEdit] = []
    if load.dtype_span is not None:
        edits.append(
            types.TextEdit(range=ls.to_lsp_range(uri, load.dtype_span), new_text=expression)
        )
    elif load.insert_at is not None:
        at = ls.to_lsp(uri, load.insert_at)
        new_text = f"{load.insert_prefix}dtype={expression}"
        edits.append(types.TextEdit(range=types.Range(at, at), new_text=new_text))
    if (
        import_edit := _import_torch_edit(ls, uri, ls.workspace.get_text_document(uri).source)
    ) is not None:
        edits.insert(0, import_edit)
    return edits


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
            if load.quantization is not None:
                continue
            for dtype in ("bf16", "fp16"):
                if load.dtype == dtype:
                    continue
                estimate = ls.load_estimate(uri, load, dtype).estimate
                size = f" (≈ {format_bytes(estimate.total_bytes)})" if estimate else ""
                related = [d for d in ours if d.code in ("over-budget", "fp32-load")]
                actions.append(
                    types.CodeAction(
                        title=f"memlens: load in {DTYPE_EXPRESSIONS[dtype]}{size}",
                        kind=types.CodeActionKind.QuickFix,
                        diagnostics=related or None,
                        is_preferred=dtype == "bf16" and bool(related),
                        edit=types.WorkspaceEdit(changes={uri: dtype_edits(ls, uri, load, dtype)}),
                    )
                )
        return actions
