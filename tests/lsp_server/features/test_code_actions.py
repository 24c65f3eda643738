"""Quick fixes (dtype and engine compression) through a real LSP client."""

from __future__ import annotations

import ast
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.support.lsp_client import apply_edits, open_document


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
