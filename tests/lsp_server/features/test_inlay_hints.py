"""Inlay hints at loads, layers, ``generate`` calls and calls that build a model of the
file, through a real LSP client."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from memlens.units import format_bytes, format_count
from tests.support.lsp_client import WHOLE, open_document
from tests.support.lsp_sources import SERVE
from tests.support.meta_truth import build_on_meta, run_on_meta, torch_size
from tests.support.model_sources import NAMED_CONFIGS


async def test_inlay_hints_at_loads_layers_and_generate(
    client: LanguageClient, workspace: Path
) -> None:
    uri = open_document(client, workspace / "hints.py", SERVE)
    hints = await client.text_document_inlay_hint_async(
        types.InlayHintParams(text_document=types.TextDocumentIdentifier(uri=uri), range=WHOLE)
    )
    labels = {h.position.line: h.label for h in hints}
    assert labels[3] == "weights ≈ 25.1 GiB fp32 · KV 1.0 MiB/tok"
    # the batch is not known: per sequence (issue 13: it said "× batch 1")
    assert labels[4] == "KV +256.0 MiB for 256 new tokens per sequence"
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
    assert any(h.label == "weights ≈ 25.1 GiB fp32 · KV 1.0 MiB/tok" for h in hints)


async def test_hints_at_calls_that_build_a_model_of_the_file(
    client: LanguageClient, workspace: Path
) -> None:
    text = NAMED_CONFIGS + "\nmedium = Transformer(ModelArgs(n_layer=24, dim=1024, n_head=16))\n"
    uri = open_document(client, workspace / "named_configs.py", text)
    lines = text.splitlines()
    hints = await client.text_document_inlay_hint_async(
        types.InlayHintParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(types.Position(0, 0), types.Position(len(lines), 0)),
        )
    )
    labels = {lines[h.position.line].split(" = ")[0].strip(): h.label for h in hints}
    namespace = run_on_meta(NAMED_CONFIGS)
    for target, call in (
        ("seven", 'Transformer.from_name("7B")'),
        ("medium", "Transformer(ModelArgs(n_layer=24, dim=1024, n_head=16))"),
    ):
        params, size = torch_size(build_on_meta(namespace, call))
        assert labels[target] == f"{format_count(params)} params · {format_bytes(size)} fp32"
    assert labels["seven"].startswith("6.7B params")
