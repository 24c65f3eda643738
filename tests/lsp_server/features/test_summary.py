"""``memlens/documentSummary`` (the extension's status bar) through a real LSP client."""

from __future__ import annotations

from pathlib import Path

import pytest
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from tests.support.lsp_client import open_document
from tests.support.lsp_sources import SERVE
from tests.support.model_sources import NAMED_CONFIGS

GIB = 2**30


async def test_summary_sums_the_model_loads(client: LanguageClient, workspace: Path) -> None:
    uri = open_document(client, workspace / "summary.py", SERVE)
    summary = await client.protocol.send_request_async("memlens/documentSummary", {"uri": uri})
    assert summary.models == 1 and summary.estimated == 1
    assert summary.label == "weights ≈ 25.1 GiB"
    assert 25 * GIB < summary.weight_bytes < 25.2 * GIB
    assert summary.budget_bytes == 24 * GIB and summary.over_budget is True
    assert summary.over_budget_models == 1  # its serving total, as the diagnostic says
    assert summary.budget_label == "24.0 GiB"


async def test_summary_of_module_classes_only(client: LanguageClient, workspace: Path) -> None:
    module_only = SERVE.split("\n\n\n", 1)[1]
    uri = open_document(
        client, workspace / "module.py", "import torch.nn as nn\n\n\n" + module_only
    )
    summary = await client.protocol.send_request_async("memlens/documentSummary", {"uri": uri})
    assert summary.models == 0 and summary.label == "weights Σ 344.0 MiB"
    assert summary.over_budget is False


async def test_summary_sums_the_calls_that_build_a_module(
    client: LanguageClient, workspace: Path
) -> None:
    uri = open_document(client, workspace / "builds.py", NAMED_CONFIGS)
    summary = await client.protocol.send_request_async("memlens/documentSummary", {"uri": uri})
    # Transformer.from_name("gqa") in load() and ("7B") at module level, both fp32
    assert summary.models == 2 and summary.estimated == 2
    assert summary.label == "weights ≈ 25.3 GiB · 2 models"
    assert summary.over_budget is True and summary.over_budget_models == 1  # the 7B one


async def test_summary_of_an_unopened_document_is_an_error(
    client: LanguageClient, workspace: Path
) -> None:
    with pytest.raises(JsonRpcException, match="is not open"):
        await client.protocol.send_request_async(
            "memlens/documentSummary", {"uri": (workspace / "nope.py").as_uri()}
        )
