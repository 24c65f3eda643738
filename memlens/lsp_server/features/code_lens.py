"""Code lenses: ``Profile memory`` and ``Compress…`` above model loads (trusted
workspaces only: they run the worker), and each ``nn.Module`` class's total."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from memlens.lsp_server.estimates import class_totals
from memlens.lsp_server.features.commands import runnable
from memlens.lsp_server.features.labels import class_label
from memlens.lsp_server.findings import Position, Span

if TYPE_CHECKING:
    from memlens.lsp_server.server import MemlensServer


def register(server: MemlensServer) -> None:
    """``textDocument/codeLens``."""

    @server.feature(types.TEXT_DOCUMENT_CODE_LENS)
    def code_lens(ls: MemlensServer, params: types.CodeLensParams) -> list[types.CodeLens]:
        uri = params.text_document.uri
        analysis = ls.analysis(uri)
        lenses: list[types.CodeLens] = []
        if ls.settings.trusted:
            for load in filter(runnable, analysis.loads):
                line = load.span.start.line
                at = ls.to_lsp_range(uri, Span(Position(line, 0), Position(line, 0)))
                for title, command in (
                    ("Profile memory", "memlens.profile"),
                    ("Compress…", "memlens.compress"),
                ):
                    lenses.append(
                        types.CodeLens(
                            range=at,
                            command=types.Command(
                                title=title, command=command, arguments=[uri, line]
                            ),
                        )
                    )
        totals = class_totals(analysis.classes)
        for cls in analysis.classes:
            total = totals[cls.name]
            if total.params or not total.complete:
                lenses.append(
                    types.CodeLens(
                        range=ls.to_lsp_range(uri, cls.span),
                        command=types.Command(title=class_label(total), command=""),
                    )
                )
        return lenses
