"""Code lenses on model loads and module classes through a real LSP client."""

from __future__ import annotations

import shutil
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from memlens.units import format_bytes, format_count
from tests.support.lsp_client import open_document
from tests.support.lsp_sources import SERVE
from tests.support.meta_truth import build_on_meta, run_on_meta, torch_size
from tests.support.model_sources import DATACLASS_GPT, LLAMA_PARTS


async def test_code_lenses(client: LanguageClient, workspace: Path) -> None:
    uri = open_document(client, workspace / "lens.py", SERVE)
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    titles = {(lens.range.start.line, lens.command.title) for lens in lenses}
    assert (3, "Profile memory") in titles and (3, "Compress…") in titles
    assert (7, "Σ 90.2M params · 344.0 MiB") in titles


async def test_class_lenses_take_the_config_defaults(
    client: LanguageClient, workspace: Path
) -> None:
    """Regression: every class of a config-driven model read ``≥ 0 params · 0 B``."""
    uri = open_document(client, workspace / "config_gpt.py", DATACLASS_GPT)
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    titles = {
        DATACLASS_GPT.splitlines()[lens.range.start.line]: lens.command.title for lens in lenses
    }
    params, size = torch_size(build_on_meta(run_on_meta(DATACLASS_GPT), "GPT(GPTConfig())"))
    assert titles["class GPT(nn.Module):"] == (
        f"Σ {format_count(params)} params · {format_bytes(size)} (GPTConfig defaults)"
    )
    assert not any(title.startswith("≥ 0") for title in titles.values())
    # sizes given only by arguments without defaults: no lens rather than a guess
    assert "class LayerNorm(nn.Module):" not in titles
    assert "class Block(nn.Module):" not in titles


async def test_class_lens_follows_imports_into_the_workspace(
    client: LanguageClient, workspace: Path
) -> None:
    package = workspace / "split_llama"
    shutil.copytree(LLAMA_PARTS, package, ignore=shutil.ignore_patterns("__pycache__"))
    text = (package / "model.py").read_text()
    uri = open_document(client, package / "model.py", text)
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    titles = {text.splitlines()[lens.range.start.line]: lens.command.title for lens in lenses}
    assert titles["class Llama(nn.Module):"] == "Σ 21.8M params · 83.3 MiB (LlamaArgs defaults)"
