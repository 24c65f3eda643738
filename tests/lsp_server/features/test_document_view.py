"""``memlens/documentView`` (the status bar's click) through a real LSP client."""

from __future__ import annotations

from pathlib import Path

import pytest
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from tests.support.lsp_client import open_document
from tests.support.lsp_sources import SERVE

SECOND_LOAD = 'small = AutoModelForCausalLM.from_pretrained("gpt2")\n'


async def test_the_view_of_a_files_loads_names_each_model(
    client: LanguageClient, workspace: Path
) -> None:
    """Issue 17: clicking the status bar opened an empty "No memory report yet" view."""
    uri = open_document(client, workspace / "two_loads.py", SERVE + SECOND_LOAD)
    view = await client.protocol.send_request_async("memlens/documentView", {"uri": uri})
    assert view.title == "Estimate · two_loads.py"
    assert [bar.label for bar in view.totals] == [
        "meta-llama/Llama-2-7b-hf (fp32)",
        "openai-community/gpt2 (fp32)",
    ]
    assert view.subtitle == "per layer of meta-llama/Llama-2-7b-hf at fp32"
    assert view.budget.text == "24.0 GiB" and view.budget.exceeded is True
    assert [f.label for f in view.figures] == [
        "meta-llama/Llama-2-7b-hf serving",
        "openai-community/gpt2 serving",
    ]


async def test_a_file_without_loads_has_no_view(client: LanguageClient, workspace: Path) -> None:
    uri = open_document(client, workspace / "no_loads.py", "import torch\n")
    assert await client.protocol.send_request_async("memlens/documentView", {"uri": uri}) is None


@pytest.mark.parametrize("params", [{}, {"uri": 3}, {"uri": "file:///not/open.py"}])
async def test_bad_params_are_errors(
    client: LanguageClient, workspace: Path, params: dict[str, object]
) -> None:
    with pytest.raises(JsonRpcException, match=r"not open|params must be"):
        await client.protocol.send_request_async("memlens/documentView", params)
