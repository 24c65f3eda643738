"""Model-load diagnostics through a real LSP client (and the quick fix that clears one)."""

from __future__ import annotations

import ast
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.support.lsp_client import apply_edits, open_document
from tests.support.lsp_sources import SERVE


async def test_diagnostics_and_dtype_quick_fix(client: LanguageClient, workspace: Path) -> None:
    uri = open_document(client, workspace / "fix.py", SERVE)
    document = types.TextDocumentIdentifier(uri=uri)
    report = await client.text_document_diagnostic_async(
        types.DocumentDiagnosticParams(text_document=document)
    )
    by_code = {d.code: d for d in report.items}
    assert set(by_code) == {"over-budget", "fp32-load"}
    over = by_code["over-budget"]
    assert over.range.start == types.Position(3, 8)
    assert "24.0 GiB memory budget" in over.message
    # it says what it counts (issue 17): the serving total, not the hint's weights
    assert "serving ≈ 29.9 GiB at 4k ctx (weights 25.1 GiB" in over.message
    assert "bf16 would need" in over.message and "fits" in over.message

    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=document,
            range=over.range,
            context=types.CodeActionContext(diagnostics=report.items),
        )
    )
    bf16 = next(a for a in actions if "torch.bfloat16" in a.title)
    assert bf16.is_preferred
    fixed = apply_edits(SERVE, bf16.edit.changes[uri])
    ast.parse(fixed)  # the edit produces valid Python
    assert "import torch\n" in fixed
    assert 'from_pretrained("meta-llama/Llama-2-7b-hf", dtype=torch.bfloat16)' in fixed

    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=fixed)],
        )
    )
    report = await client.text_document_diagnostic_async(
        types.DocumentDiagnosticParams(text_document=document)
    )
    assert list(report.items) == []


async def test_remote_code_and_unresolved_ids_are_flagged(
    client: LanguageClient, workspace: Path
) -> None:
    text = (
        "from transformers import AutoModel\n"
        'm = AutoModel.from_pretrained("someone/private-model", trust_remote_code=True)\n'
    )
    uri = open_document(client, workspace / "remote.py", text)
    report = await client.text_document_diagnostic_async(
        types.DocumentDiagnosticParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    codes = {d.code: d for d in report.items}
    assert set(codes) == {"remote-code", "unresolved-model"}
    assert codes["remote-code"].severity == types.DiagnosticSeverity.Warning
    assert "hf download" in codes["unresolved-model"].message


async def test_a_pull_naming_the_previous_result_of_an_unchanged_document_is_unchanged(
    client: LanguageClient, workspace: Path
) -> None:
    """Diagnostics are computed once per document version: VS Code's next pull names the
    last result id and gets an "unchanged" report until the text or the settings change."""
    uri = open_document(client, workspace / "result_ids.py", SERVE)
    document = types.TextDocumentIdentifier(uri=uri)

    async def pull(previous: str | None) -> types.DocumentDiagnosticReport:
        report: types.DocumentDiagnosticReport = await client.text_document_diagnostic_async(
            types.DocumentDiagnosticParams(text_document=document, previous_result_id=previous)
        )
        return report

    first = await pull(None)
    assert first.kind == "full" and first.result_id
    assert {d.code for d in first.items} == {"over-budget", "fp32-load"}
    same = await pull(first.result_id)
    assert same.kind == "unchanged" and same.result_id == first.result_id
    assert (await pull("some other id")).kind == "full"

    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                types.TextDocumentContentChangeWholeDocument(
                    text=SERVE.replace("float32", "bfloat16")
                )
            ],
        )
    )
    edited = await pull(first.result_id)
    assert edited.kind == "full" and edited.result_id != first.result_id
    assert {d.code for d in edited.items} == set()

    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"memlens": {"memoryBudget": "4GiB"}})
    )
    rebudgeted = await pull(edited.result_id)
    assert rebudgeted.kind == "full" and {d.code for d in rebudgeted.items} == {"over-budget"}
