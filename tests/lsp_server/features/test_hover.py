"""Hovers on model loads and layers through a real LSP client."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.support.lsp_client import open_document
from tests.support.lsp_sources import SERVE
from tests.support.model_sources import NAMED_CONFIGS


async def test_hover_shows_the_block_table(client: LanguageClient, workspace: Path) -> None:
    uri = open_document(client, workspace / "hover.py", SERVE)
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(3, 40)
        )
    )
    text = hover.contents.value
    assert "model.layers.0–31 ×32" in text
    assert "| block | params | weights | KV/token |" in text
    assert "does **not** fit" in text
    layer = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(10, 20)
        )
    )
    assert "nn.Linear" in layer.contents.value and "45.1M params" in layer.contents.value


async def test_hover_on_a_call_that_builds_a_model_shows_its_submodules(
    client: LanguageClient, workspace: Path
) -> None:
    uri = open_document(client, workspace / "hover_build.py", NAMED_CONFIGS)
    line = NAMED_CONFIGS.splitlines().index('seven = Transformer.from_name("7B")')
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line, 12),
        )
    )
    assert hover is not None and isinstance(hover.contents, types.MarkupContent)
    text = hover.contents.value
    assert text.startswith("**Transformer** · 6.7B params · 25.1 GiB fp32")
    assert "| layers | 6.5B |" in text and "| tok\\_embeddings | 131.1M |" in text
