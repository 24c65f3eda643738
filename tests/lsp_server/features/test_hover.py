"""Hovers on model loads and layers through a real LSP client."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from memlens.lsp_server.features.hover import load_markdown
from memlens.profiler.estimate import analytic_estimate
from memlens.profiler.tensors import StorageDtype
from tests.support.lsp_client import open_document
from tests.support.lsp_sources import SERVE
from tests.support.model_sources import NAMED_CONFIGS
from tests.support.tiny_configs import tiny_config


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


def test_after_a_profile_the_hover_shows_the_measured_table() -> None:
    """Issue 17: the hover gained one line after a Profile and still said "(analytic)"."""
    [estimate] = analytic_estimate(tiny_config("llama"), "tiny-llama", [StorageDtype.FP32])
    names = [layer.name for layer in estimate.layers]
    measured = {
        "device": "cpu",
        "weights_bytes": 3 * 2**20,
        "peak_bytes": 5 * 2**20,
        "prompt_tokens": 64,
        "new_tokens": 8,
        "decode_tokens_per_s": 16.9,
        "layers": [
            {"name": n, "bytes": 2**20, "kv_cache_bytes": 2**10, "activation_bytes": 2**12 + i}
            for i, n in enumerate(names)
        ],
    }
    analytic = load_markdown(estimate, 2**40, None)
    assert "(analytic)" in analytic and "measured weights" not in analytic
    text = load_markdown(estimate, 2**40, {"measured": measured})
    assert "(measured on cpu; estimate analytic)" in text
    assert "| measured weights | measured KV | largest output |" in text
    decoders = next(line for line in text.splitlines() if "×3" in line)
    # three decoder layers: weights and KV summed, the largest output is the largest one
    assert decoders.endswith("| 3.0 MiB | 3.0 KiB | 4.0 KiB |")
    assert "decode 16.9 tokens/s." in text
    assert "Serving ≈ " in text and " ctx: weights " in text
