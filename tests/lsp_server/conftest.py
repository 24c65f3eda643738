"""A real memlens language server over stdio, driven by pytest-lsp with VS Code's client
capabilities; LSP specification warnings fail the test (pyproject filterwarnings)."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_lsp
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.support.lsp_client import SERVER_ENV, session
from tests.support.tiny_configs import build_model, tiny_config

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


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient, workspace: Path) -> AsyncIterator[None]:
    """An initialized session with a 24 GiB memory budget."""
    async for _ in session(lsp_client, workspace, {"memoryBudget": BUDGET}):
        yield


@pytest_lsp.fixture(config=SERVER)
async def untrusted_client(lsp_client: LanguageClient, workspace: Path) -> AsyncIterator[None]:
    """A session in a workspace VS Code has not trusted: static hints only."""
    async for _ in session(lsp_client, workspace, {"trusted": False}):
        yield
