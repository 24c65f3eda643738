"""Driving a real memlens language server through pytest-lsp: the server's environment
(offline, private caches), an initialized session with VS Code's capabilities, opening a
document, and applying the edits a quick fix returns."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities

SERVER_ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "MEMLENS_OFFLINE": "1",
    "MEMLENS_CACHE_DIR": tempfile.mkdtemp(prefix="memlens-cache-"),
    "HF_HUB_CACHE": tempfile.mkdtemp(prefix="memlens-hf-"),
}
WHOLE = types.Range(types.Position(0, 0), types.Position(100, 0))
"""A range that covers every test document."""

REFRESHES: list[str] = []
"""Refresh requests the server sent (VS Code's capabilities declare support for them)."""


def _accept_refreshes(client: LanguageClient) -> None:
    for method in (types.WORKSPACE_CODE_LENS_REFRESH, types.WORKSPACE_INLAY_HINT_REFRESH):
        client.feature(method)(lambda params, method=method: REFRESHES.append(method))


async def session(
    client: LanguageClient, workspace: Path, options: dict[str, object]
) -> AsyncIterator[None]:
    """Initialize with VS Code's capabilities and ``{"memlens": options}``; shut down after."""
    _accept_refreshes(client)
    await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=workspace.as_uri(),
            initialization_options={"memlens": options},
        )
    )
    yield
    await client.shutdown_session()


def open_document(client: LanguageClient, path: Path, text: str, version: int = 1) -> str:
    """Write ``text`` to ``path`` and open it in the server; returns the URI."""
    path.write_text(text)
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=version, text=text
            )
        )
    )
    return uri


def apply_edits(text: str, edits: list[types.TextEdit]) -> str:
    """Apply non-overlapping LSP edits (ASCII text) from last to first."""
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    ordered = sorted(
        edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True
    )
    for edit in ordered:
        start = offsets[edit.range.start.line] + edit.range.start.character
        end = offsets[edit.range.end.line] + edit.range.end.character
        text = text[:start] + edit.new_text + text[end:]
    return text


async def pulled_diagnostics(client: LanguageClient, uri: str) -> list[types.Diagnostic]:
    """The document's diagnostics, pulled."""
    report = await client.text_document_diagnostic_async(
        types.DocumentDiagnosticParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    assert isinstance(report, types.RelatedFullDocumentDiagnosticReport)
    return list(report.items)


async def hints_by_target(client: LanguageClient, uri: str, text: str) -> dict[str, str]:
    """Each hinted line's assignment target (or its whole text) → the hint's label."""
    lines = text.splitlines()
    whole = types.Range(types.Position(0, 0), types.Position(len(lines), 0))
    hints = await client.text_document_inlay_hint_async(
        types.InlayHintParams(text_document=types.TextDocumentIdentifier(uri=uri), range=whole)
    )
    return {lines[h.position.line].split(" = ")[0].strip(): str(h.label) for h in hints or []}
