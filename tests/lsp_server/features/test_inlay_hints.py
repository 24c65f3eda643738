"""Inlay hints at loads, layers and ``generate`` calls, through a real LSP client."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.support.lsp_client import WHOLE, open_document
from tests.support.lsp_sources import SERVE


async def test_inlay_hints_at_loads_layers_and_generate(
    client: LanguageClient, workspace: Path
) -> None:
    uri = open_document(client, workspace / "hints.py", SERVE)
    hints = await client.text_document_inlay_hint_async(
        types.InlayHintParams(text_document=types.TextDocumentIdentifier(uri=uri), range=WHOLE)
    )
    labels = {h.position.line: h.label for h in hints}
    assert labels[3] == "≈ 25.1 GiB fp32 · KV 1.0 MiB/token"
    assert labels[4] == "KV +256.0 MiB for 256 new tokens × batch 1"
    assert labels[10] == "45.1M params · 172.0 MiB fp32"
    assert labels[11] == "45.1M params · 172.0 MiB fp32"
    only_line_10 = await client.text_document_inlay_hint_async(
        types.InlayHintParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(types.Position(10, 0), types.Position(10, 80)),
        )
    )
    assert [h.position.line for h in only_line_10] == [10]


async def test_half_typed_code_keeps_the_other_hints(
    client: LanguageClient, workspace: Path
) -> None:
    broken = SERVE.replace("        super().__init__()\n", "        super().__init__(\n", 1)
    broken += "\n\ndef unfinished(:\n    return\n"
    uri = open_document(client, workspace / "broken.py", broken)
    hints = await client.text_document_inlay_hint_async(
        types.InlayHintParams(text_document=types.TextDocumentIdentifier(uri=uri), range=WHOLE)
    )
    assert any(h.label == "≈ 25.1 GiB fp32 · KV 1.0 MiB/token" for h in hints)
