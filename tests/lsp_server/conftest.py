"""A real memlens language server over stdio, driven by pytest-lsp with VS Code's client
capabilities; LSP specification warnings fail the test (pyproject filterwarnings)."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.profiler.tiny_configs import build_model, tiny_config

SERVER_ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "MEMLENS_OFFLINE": "1",
    "MEMLENS_CACHE_DIR": tempfile.mkdtemp(prefix="memlens-cache-"),
    "HF_HUB_CACHE": tempfile.mkdtemp(prefix="memlens-hf-"),
}
BUDGET = "24GiB"


@pytest.fixture(scope="session")
def workspace() -> Path:
    """A folder for the documents the tests open (relative model paths resolve here),
    holding ``tiny-llama/``: a random-weight model saved as safetensors."""
    folder = Path(tempfile.mkdtemp(prefix="memlens-workspace-"))
    two_layers = {**tiny_config("llama"), "num_hidden_layers": 2}
    build_model(two_layers).save_pretrained(folder / "tiny-llama")
    return folder


SERVER = ClientServerConfig(
    server_command=[sys.executable, "-m", "memlens.lsp_server"], server_env=SERVER_ENV
)


REFRESHES: list[str] = []
"""Refresh requests the server sent (VS Code's capabilities declare support for them)."""


def _accept_refreshes(client: LanguageClient) -> None:
    for method in (types.WORKSPACE_CODE_LENS_REFRESH, types.WORKSPACE_INLAY_HINT_REFRESH):
        client.feature(method)(lambda params, method=method: REFRESHES.append(method))


async def _session(
    client: LanguageClient, workspace: Path, options: dict[str, object]
) -> AsyncIterator[None]:
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


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient, workspace: Path) -> AsyncIterator[None]:
    """An initialized session with a 24 GiB memory budget."""
    async for _ in _session(lsp_client, workspace, {"memoryBudget": BUDGET}):
        yield


@pytest_lsp.fixture(config=SERVER)
async def untrusted_client(lsp_client: LanguageClient, workspace: Path) -> AsyncIterator[None]:
    """A session in a workspace VS Code has not trusted: static hints only."""
    async for _ in _session(lsp_client, workspace, {"trusted": False}):
        yield


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
