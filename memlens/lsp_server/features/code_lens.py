"""Code lenses: ``Profile memory`` and ``Compress…`` above model loads, ``Profile training
step`` above a Trainer or a hand loop's ``backward()`` (trusted workspaces only: they run
the worker), each ``nn.Module`` class's total, and, with tracing
on, ``12 traces · p50 34 ms · open`` above each function that started spans (``open``
shows its latest trace: the client's ``memlens.openTrace`` with ``{"trace_id"}``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.uris import to_fs_path

from memlens.lsp_server.analysis import Position, Span, class_totals, parse_tolerant
from memlens.lsp_server.features.commands import runnable, training_site_at
from memlens.lsp_server.features.labels import class_label, size_label
from memlens.lsp_server.traces import function_ranges, function_traces, lens_title

OPEN_TRACE_COMMAND = "memlens.openTrace"

if TYPE_CHECKING:
    from memlens.lsp_server.server import MemlensServer


def register(server: MemlensServer) -> None:
    """``textDocument/codeLens``."""

    @server.feature(types.TEXT_DOCUMENT_CODE_LENS)
    def code_lens(ls: MemlensServer, params: types.CodeLensParams) -> list[types.CodeLens]:
        uri = params.text_document.uri
        return ls.version_results(uri).get("code lenses", lambda: _document_lenses(ls, uri))


def _document_lenses(ls: MemlensServer, uri: str) -> list[types.CodeLens]:
    """Every lens of the document's current version (computed once per version: settings
    or traces changing recompute it)."""
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
                        command=types.Command(title=title, command=command, arguments=[uri, line]),
                    )
                )
        for line in sorted({site.span.start.line for site in analysis.training}):
            if training_site_at(analysis, line) is not None:
                at = ls.to_lsp_range(uri, Span(Position(line, 0), Position(line, 0)))
                lenses.append(
                    types.CodeLens(
                        range=at,
                        command=types.Command(
                            title="Profile training step",
                            command="memlens.profile",
                            arguments=[uri, line],
                        ),
                    )
                )
    totals = class_totals(analysis.classes)
    for cls in analysis.classes:
        total = totals[cls.name]
        # the evaluator's figure when it ran; else the layers' sum when it is not 0
        label = size_label(cls.size) if cls.size else class_label(total)
        if label is not None and (cls.size is not None or total.params):
            lenses.append(
                types.CodeLens(
                    range=ls.to_lsp_range(uri, cls.span),
                    command=types.Command(title=label, command=""),
                )
            )
    return lenses + trace_lenses(ls, uri)


def trace_lenses(ls: MemlensServer, uri: str) -> list[types.CodeLens]:
    """One lens per function with spans in the workspace's trace store."""
    path = to_fs_path(uri)
    if not ls.traces.active or path is None:
        return []
    rows = ls.traces.code_rows(path)
    if not rows:
        return []
    ranges = function_ranges(parse_tolerant(ls.workspace.get_text_document(uri).source).tree)
    return [
        types.CodeLens(
            range=ls.to_lsp_range(
                uri, Span(Position(t.function.def_line, 0), Position(t.function.def_line, 0))
            ),
            command=types.Command(
                title=lens_title(t),
                command=OPEN_TRACE_COMMAND,
                arguments=[{"trace_id": t.latest_trace_id}],
            ),
        )
        for t in function_traces(ranges, rows)
    ]
