"""The server's position conversion through a real LSP client: code points to UTF-16."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.support.lsp_client import WHOLE, open_document


async def test_utf16_positions_after_astral_characters(
    client: LanguageClient, workspace: Path
) -> None:
    text = 'x = "😋😋"; m = AutoModelForCausalLM.from_pretrained("gpt2", dtype=torch.float32)\n'
    uri = open_document(client, workspace / "emoji.py", text)
    hints = await client.text_document_inlay_hint_async(
        types.InlayHintParams(text_document=types.TextDocumentIdentifier(uri=uri), range=WHOLE)
    )
    [hint] = hints
    assert hint.position == types.Position(0, len(text.rstrip("\n").encode("utf-16-le")) // 2)
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(0, 20)
        )
    )
    prefix = 'x = "😋😋"; m = '
    assert hover.range.start == types.Position(0, len(prefix.encode("utf-16-le")) // 2)
    assert hover.range.start.character == len(prefix) + 2  # each emoji is 2 UTF-16 units
