"""Diagnostics at calls that build a module class of the file, and the dtype quick fixes
that clear them, through a real LSP client: each fix is applied, and what the server then
shows must be what the fix promised."""

from __future__ import annotations

import ast
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from memlens.units import format_bytes, format_count
from tests.support.lsp_client import apply_edits, hints_by_target, open_document, pulled_diagnostics
from tests.support.meta_truth import build_on_meta, run_on_meta, torch_size
from tests.support.model_sources import NAMED_CONFIGS

SEVEN = 'seven = Transformer.from_name("7B")'


def _change(client: LanguageClient, uri: str, text: str, version: int) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


async def _actions(
    client: LanguageClient, uri: str, at: types.Range, diagnostics: list[types.Diagnostic]
) -> list[types.CodeAction]:
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=at,
            context=types.CodeActionContext(diagnostics=diagnostics),
        )
    )
    return [a for a in actions or [] if isinstance(a, types.CodeAction)]


async def test_a_7b_build_in_fp32_is_flagged_and_each_cast_fix_reaches_its_promise(
    client: LanguageClient, workspace: Path
) -> None:
    uri = open_document(client, workspace / "build_7b.py", NAMED_CONFIGS)
    found = await pulled_diagnostics(client, uri)
    by_code = {d.code: d for d in found}
    assert set(by_code) == {"over-budget", "fp32-load"}
    line = NAMED_CONFIGS.splitlines().index(SEVEN)
    assert all(d.range.start == types.Position(line, 8) for d in found)
    params, size = torch_size(
        build_on_meta(run_on_meta(NAMED_CONFIGS), 'Transformer.from_name("7B")')
    )
    over = by_code["over-budget"].message
    assert f"Transformer needs {format_bytes(size)} for its fp32 weights alone" in over
    assert "over the 24.0 GiB memory budget; bf16 would need" in over and "fits" in over
    assert f"float32 build of a {format_count(params)}-parameter Transformer" in (
        by_code["fp32-load"].message
    )

    actions = await _actions(client, uri, by_code["over-budget"].range, found)
    casts = {a.title.split("torch.")[1].split(" ")[0]: a for a in actions}
    assert set(casts) == {"bfloat16", "float16"} and casts["bfloat16"].is_preferred
    for version, (name, dtype) in enumerate((("bfloat16", "bf16"), ("float16", "fp16")), 2):
        fixed = apply_edits(NAMED_CONFIGS, casts[name].edit.changes[uri])
        ast.parse(fixed)
        assert f'seven = Transformer.from_name("7B").to(torch.{name})' in fixed.splitlines()
        _change(client, uri, fixed, version)
        promised = casts[name].title.split("(")[-1].rstrip(")")
        assert promised == f"{format_count(params)} params · {format_bytes(size // 2)}"
        assert (await hints_by_target(client, uri, fixed))["seven"] == f"{promised} {dtype}"
        assert await pulled_diagnostics(client, uri) == []


async def test_cast_fixes_replace_a_chained_cast_and_keep_a_device_move(
    client: LanguageClient, workspace: Path
) -> None:
    casts = {
        "a": (
            'Transformer.from_name("7B").float()',
            'Transformer.from_name("7B").to(torch.bfloat16)',
        ),
        "b": (
            'Transformer.from_name("7B").to("cpu")',
            'Transformer.from_name("7B").to("cpu").to(torch.bfloat16)',
        ),
        "c": (
            'Transformer.from_name("7B").to(device="cpu", dtype=torch.float32)',
            'Transformer.from_name("7B").to(device="cpu", dtype=torch.bfloat16)',
        ),
    }
    text = NAMED_CONFIGS.replace(SEVEN, "")
    text += "".join(f"{target} = {before}\n" for target, (before, _) in casts.items())
    uri = open_document(client, workspace / "build_casts.py", text)
    lines = text.splitlines()
    for version, (target, (_, after)) in enumerate(casts.items(), 2):
        line = lines.index(f"{target} = {casts[target][0]}")
        at = types.Range(types.Position(line, 6), types.Position(line, 6))
        [bf16] = [a for a in await _actions(client, uri, at, []) if "bfloat16" in a.title]
        fixed = apply_edits(text, bf16.edit.changes[uri])
        assert f"{target} = {after}" in fixed.splitlines()
        _change(client, uri, fixed, version)
        hint = (await hints_by_target(client, uri, fixed))[target]
        assert hint == bf16.title.split("(")[-1].rstrip(")") + " bf16"
        _change(client, uri, text, version + 10)


async def test_a_build_under_set_default_dtype_is_not_flagged(
    client: LanguageClient, workspace: Path
) -> None:
    text = NAMED_CONFIGS.replace(SEVEN, f"torch.set_default_dtype(torch.bfloat16)\n{SEVEN}")
    uri = open_document(client, workspace / "build_default.py", text)
    assert await pulled_diagnostics(client, uri) == []
    assert (await hints_by_target(client, uri, text))["seven"].endswith(" bf16")
