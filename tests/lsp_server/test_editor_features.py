"""Hints, diagnostics, quick fixes, hovers and lenses through a real LSP client."""

from __future__ import annotations

import ast
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.lsp_server.conftest import REFRESHES, open_document

SERVE = """\
from transformers import AutoModelForCausalLM
import torch.nn as nn

model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-2-7b-hf", dtype=torch.float32)
out = model.generate(ids, max_new_tokens=256)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.Linear(4096, 11008)
        self.down = nn.Linear(11008, 4096, bias=False)
"""
WHOLE = types.Range(types.Position(0, 0), types.Position(100, 0))


async def actions_at(
    client: LanguageClient, uri: str, line: int, character: int
) -> list[types.CodeAction]:
    """The code actions offered at one cursor position, with no diagnostics in context."""
    at = types.Position(line, character)
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(at, at),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    return [a for a in actions or [] if isinstance(a, types.CodeAction)]


def apply_edits(text: str, edits: list[types.TextEdit]) -> str:
    """Apply non-overlapping LSP edits (ASCII text) from last to first."""
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    ordered = sorted(
        edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True
    )
    for edit in ordered:
        start = offsets[edit.range.start.line] + edit.range.start.character
        end = offsets[edit.range.end.line] + edit.range.end.character
        text = text[:start] + edit.new_text + text[end:]
    return text


async def test_inlay_hints_at_loads_layers_and_generate(
    client: LanguageClient, workspace: Path
) -> None:
    uri = open_document(client, workspace / "hints.py", SERVE)
    hints = await client.text_document_inlay_hint_async(
        types.InlayHintParams(text_document=types.TextDocumentIdentifier(uri=uri), range=WHOLE)
    )
    labels = {h.position.line: h.label for h in hints}
    assert labels[3] == "≈ 25.1 GiB fp32 · KV 1.0 MiB/token"
    assert labels[4] == "KV +256.0 MiB for 256 new tokens × batch 1"
    assert labels[10] == "45.1M params · 172.0 MiB fp32"
    assert labels[11] == "45.1M params · 172.0 MiB fp32"
    only_line_10 = await client.text_document_inlay_hint_async(
        types.InlayHintParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(types.Position(10, 0), types.Position(10, 80)),
        )
    )
    assert [h.position.line for h in only_line_10] == [10]


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


async def test_quick_fix_inserts_a_dtype_argument(client: LanguageClient, workspace: Path) -> None:
    text = (
        "import torch\nfrom transformers import pipeline\n"
        'pipe = pipeline("text-generation", model="mistral-7b",)\n'
    )
    uri = open_document(client, workspace / "insert.py", text)
    actions = await actions_at(client, uri, 2, 10)
    fp16 = next(a for a in actions if "torch.float16" in a.title)
    fixed = apply_edits(text, fp16.edit.changes[uri])
    assert 'model="mistral-7b", dtype=torch.float16)' in fixed
    assert fixed.count("import torch") == 1
    ast.parse(fixed)


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


async def test_code_lenses(client: LanguageClient, workspace: Path) -> None:
    uri = open_document(client, workspace / "lens.py", SERVE)
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    titles = {(lens.range.start.line, lens.command.title) for lens in lenses}
    assert (3, "Profile memory") in titles and (3, "Compress…") in titles
    assert (7, "Σ 90.2M params · 344.0 MiB") in titles


async def test_half_typed_code_keeps_the_other_hints(
    client: LanguageClient, workspace: Path
) -> None:
    broken = SERVE.replace("        super().__init__()\n", "        super().__init__(\n", 1)
    broken += "\n\ndef unfinished(:\n    return\n"
    uri = open_document(client, workspace / "broken.py", broken)
    hints = await client.text_document_inlay_hint_async(
        types.InlayHintParams(text_document=types.TextDocumentIdentifier(uri=uri), range=WHOLE)
    )
    assert any(h.label == "≈ 25.1 GiB fp32 · KV 1.0 MiB/token" for h in hints)


async def test_quick_fix_edge_cases(client: LanguageClient, workspace: Path) -> None:
    cases = {
        # a comma inside a trailing comment is not a trailing comma
        "comment.py": (
            '"""Module doc.\nfrom here on"""\nfrom __future__ import (\n'
            "    annotations,\n)\nimport os\n"
            'm = AutoModel.from_pretrained("gpt2"  # small, fast\n)\n'
        ),
        # an alias of torch is used, not a second import
        "alias.py": 'import torch as T\nm = AutoModel.from_pretrained("gpt2")\n',
    }
    fixed = {}
    for name, text in cases.items():
        uri = open_document(client, workspace / name, text)
        line = text.splitlines().index(next(ln for ln in text.splitlines() if "from_pre" in ln))
        actions = await actions_at(client, uri, line, 5)
        bf16 = next(a for a in actions if "bfloat16" in a.title)
        fixed[name] = apply_edits(text, bf16.edit.changes[uri])
        ast.parse(fixed[name])
    assert fixed["comment.py"].index("import torch\n") > fixed["comment.py"].index(")\n")
    assert fixed["comment.py"].index("import torch\n") < fixed["comment.py"].index("import os")
    assert ", dtype=torch.bfloat16)" in fixed["comment.py"]
    assert fixed["alias.py"].count("import") == 1 and "dtype=T.bfloat16" in fixed["alias.py"]


async def test_no_dtype_fix_next_to_double_star_kwargs(
    client: LanguageClient, workspace: Path
) -> None:
    text = 'import torch\nm = AutoModel.from_pretrained("gpt2", **kwargs)\n'
    uri = open_document(client, workspace / "kwargs.py", text)
    actions = await actions_at(client, uri, 1, 5)
    assert not [a for a in actions if "load in" in a.title]


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


async def test_engine_quick_fix_compresses_after_the_load(
    client: LanguageClient, workspace: Path
) -> None:
    text = (
        '"""Serve."""\nimport torch\n\ndef serve():\n'
        "    model = AutoModelForCausalLM.from_pretrained(\n"
        '        "meta-llama/Llama-2-7b-hf", dtype=torch.bfloat16\n    )\n'
        "    return model\n"
    )
    uri = open_document(client, workspace / "engine.py", text)
    actions = await actions_at(client, uri, 4, 20)
    int4 = next(a for a in actions if "INT4" in a.title)
    assert "(≈ " in int4.title
    fixed = apply_edits(text, int4.edit.changes[uri])
    ast.parse(fixed)
    lines = fixed.splitlines()
    assert lines[1] == "from memlens.engine import Int4WeightConfig, compress_"
    assert lines[lines.index("    )") + 1] == (
        "    compress_(model, Int4WeightConfig(group_size=128))"
    )
    exec(lines[1], {})  # the import the fix adds exists
