"""The server through a real LSP client: position conversion (code points to UTF-16), and
what it holds under a workload of many documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient

from memlens.units import format_count
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


EVERY_LINE = types.Range(types.Position(0, 0), types.Position(10_000, 0))


def _generated_model(i: int) -> str:
    """A model file of about 5 KB (300 of them are more than the parse cache holds)."""
    blocks = "".join(
        f"class Block{i}x{b}(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        f"        self.up = nn.Linear(HIDDEN, {b + 2} * HIDDEN)\n"
        "        self.norm = nn.LayerNorm(HIDDEN)\n"
        "        self.blocks = nn.ModuleList(\n"
        f"            [nn.Linear(HIDDEN, HIDDEN) for _ in range({b + 1})]\n"
        "        )\n"
        "\n\n"
        for b in range(20)
    )
    return f"import torch.nn as nn\n\nHIDDEN = {64 + i}\n\n\n{blocks}"


async def _status(client: LanguageClient) -> dict[str, Any]:
    status: dict[str, Any] = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="memlens.serverStatus")
    )
    return status


async def test_the_parse_cache_stays_bounded_and_closed_documents_release_theirs(
    client: LanguageClient, workspace: Path
) -> None:
    """Regression (issue 13): a module-wide parse cache grew without bound over a few
    hundred files and kept closed documents' trees. Open 300 generated files, edit and
    re-ask each, then close them all."""
    folder = workspace / "workload"
    folder.mkdir(exist_ok=True)
    count = 300
    texts = [_generated_model(i) for i in range(count)]
    assert sum(len(t) for t in texts) > 2**20  # more than the cache may hold
    uris = [open_document(client, folder / f"model_{i}.py", t) for i, t in enumerate(texts)]
    for i, uri in enumerate(uris):
        document = types.TextDocumentIdentifier(uri=uri)
        hints = await client.text_document_inlay_hint_async(
            types.InlayHintParams(text_document=document, range=EVERY_LINE)
        )
        assert len(hints) == 20 * 3
        # Type one more layer into the first class: its hint appears, the rest stay.
        added = f"        self.extra = nn.Linear(HIDDEN, {i + 1})\n"
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(types.Position(9, 0), types.Position(9, 0)),
                        text=added,
                    )
                ],
            )
        )
        hints = await client.text_document_inlay_hint_async(
            types.InlayHintParams(text_document=document, range=EVERY_LINE)
        )
        assert len(hints) == 20 * 3 + 1
        hidden = 64 + i
        [label] = [h.label for h in hints if h.position.line == 9]
        assert isinstance(label, str)
        assert label.startswith(f"{format_count(hidden * (i + 1) + i + 1)} params · ")
    status = await _status(client)
    cache = status["parse_cache"]
    assert status["open_documents"] == count
    assert 0 < cache["entries"] <= cache["max_entries"]
    assert 0 < cache["source_bytes"] <= cache["max_source_bytes"]
    assert cache["documents"] < count  # the least recently used documents were evicted
    for uri in uris:
        client.text_document_did_close(
            types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )
    status = await _status(client)
    assert status["open_documents"] == 0
    assert status["held_documents"] == 0
    assert status["parse_cache"] == {**cache, "entries": 0, "source_bytes": 0, "documents": 0}
