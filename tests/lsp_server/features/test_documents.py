"""Settings from the client, through a real LSP client: a change updates the budget and
never grants trust."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.support.lsp_client import REFRESHES, open_document
from tests.support.lsp_sources import SERVE


async def test_settings_change_keeps_trust_and_updates_the_budget(
    untrusted_client: LanguageClient, workspace: Path
) -> None:
    client = untrusted_client
    uri = open_document(client, workspace / "settings.py", SERVE)
    document = types.TextDocumentIdentifier(uri=uri)
    for budget, over in (("64GiB", False), ("8GiB", True)):  # the load needs ≈ 29.9 GiB
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(
                settings={"memlens": {"memoryBudget": budget, "trusted": True}}
            )
        )
        report = await client.text_document_diagnostic_async(
            types.DocumentDiagnosticParams(text_document=document)
        )
        found = {d.code: d.message for d in report.items}
        assert ("over-budget" in found) is over
    assert "8.0 GiB memory budget" in found["over-budget"]
    # VS Code 1.65's capabilities declare code-lens refresh (not inlay-hint refresh)
    assert types.WORKSPACE_CODE_LENS_REFRESH in REFRESHES
    assert types.WORKSPACE_INLAY_HINT_REFRESH not in REFRESHES
    status = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="memlens.workerStatus")
    )
    assert status["trusted"] is False and status["server_imports_torch"] is False
