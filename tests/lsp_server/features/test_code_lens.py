"""Code lenses on model loads and module classes through a real LSP client."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.support.lsp_client import open_document
from tests.support.lsp_sources import SERVE


async def test_code_lenses(client: LanguageClient, workspace: Path) -> None:
    uri = open_document(client, workspace / "lens.py", SERVE)
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    titles = {(lens.range.start.line, lens.command.title) for lens in lenses}
    assert (3, "Profile memory") in titles and (3, "Compress…") in titles
    assert (7, "Σ 90.2M params · 344.0 MiB") in titles
