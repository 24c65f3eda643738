"""Quick fixes (dtype and engine compression) through a real LSP client."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.support.lsp_client import apply_edits, hints_by_target, open_document, pulled_diagnostics


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


SERVE = (
    '"""Serve a chat model."""\n\nimport torch\n'
    "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
    'model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-2-7b-hf", '
    "dtype=torch.float32)\n"
    'tokenizer = AutoTokenizer.from_pretrained("meta-llama/Llama-2-7b-hf")\n'
    "out = model.generate(ids, max_new_tokens=256)\n"
)


async def test_engine_quick_fixes_load_compressed_in_one_step_and_keep_their_promise(
    client: LanguageClient, workspace: Path
) -> None:
    for version, scheme in enumerate(("INT8", "INT4"), 2):
        uri = open_document(client, workspace / f"serve_{scheme}.py", SERVE)
        found = await pulled_diagnostics(client, uri)
        assert {"over-budget", "fp32-load"} <= {d.code for d in found}
        line = SERVE.splitlines().index(next(ln for ln in SERVE.splitlines() if "model =" in ln))
        at = types.Range(types.Position(line, 10), types.Position(line, 10))
        actions = await client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=at,
                context=types.CodeActionContext(diagnostics=found),
            )
        )
        [fix] = [a for a in actions or [] if isinstance(a, types.CodeAction) and scheme in a.title]
        assert fix.diagnostics and {d.code for d in fix.diagnostics} >= {"over-budget"}
        fixed = apply_edits(SERVE, fix.edit.changes[uri])
        ast.parse(fixed)
        lines = fixed.splitlines()
        config = "Int4WeightConfig(group_size=128)" if scheme == "INT4" else "Int8WeightConfig()"
        imports = [ln for ln in lines if ln.startswith("from memlens.engine import")]
        assert imports == [f"from memlens.engine import {config.split('(')[0]}, load_model"]
        assert lines.index(imports[0]) < lines.index("import torch")
        exec(imports[0], {})  # the names the fix imports exist
        assert (
            'model = load_model("meta-llama/Llama-2-7b-hf", torch.bfloat16, '
            f"weights={config}).model"
        ) in lines
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=fixed)],
            )
        )
        promised = fix.title.split("(")[-1].rstrip(")")
        assert promised.startswith("weights ≈ ")
        shown = "int4 g128" if scheme == "INT4" else "int8"
        hint = (await hints_by_target(client, uri, fixed))["model"]
        assert hint.startswith(f"{promised} {shown} · KV ")
        codes = {d.code for d in await pulled_diagnostics(client, uri)}
        assert not codes & {"over-budget", "fp32-load"}, codes


async def test_engine_quick_fix_merges_imports_and_picks_a_group_every_width_divides(
    client: LanguageClient, workspace: Path
) -> None:
    smol = {  # SmolLM2-135M's shape: width 576, a multiple of 64, not of 128
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 576,
        "intermediate_size": 1536,
        "num_hidden_layers": 30,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "vocab_size": 49152,
        "max_position_embeddings": 8192,
        "tie_word_embeddings": True,
    }
    (workspace / "smol").mkdir(exist_ok=True)
    (workspace / "smol" / "config.json").write_text(json.dumps(smol))
    text = (
        "import torch\nfrom memlens.engine import compress_\n\ndef serve():\n"
        "    model = AutoModelForCausalLM.from_pretrained(\n"
        '        "smol", torch_dtype=torch.float16\n    )\n'
        "    return model\n"
    )
    uri = open_document(client, workspace / "engine.py", text)
    actions = await actions_at(client, uri, 4, 20)
    int4 = next(a for a in actions if "INT4" in a.title)
    fixed = apply_edits(text, int4.edit.changes[uri])
    ast.parse(fixed)
    lines = fixed.splitlines()
    assert lines[1] == "from memlens.engine import compress_, Int4WeightConfig, load_model"
    # SmolLM2's width 576 is a multiple of 64, not of 128; fp16 is kept
    assert " INT4 g64 " in int4.title and "(weights ≈ " in int4.title
    assert lines[4] == (
        '    model = load_model("smol", torch.float16, '
        "weights=Int4WeightConfig(group_size=64)).model"
    )
    assert lines[5] == "    return model"


async def test_no_engine_fix_where_load_model_cannot_do_the_same_load(
    client: LanguageClient, workspace: Path
) -> None:
    calls = (
        '"meta-llama/Llama-2-7b-hf", device_map="auto"',
        '"meta-llama/Llama-2-7b-hf", trust_remote_code=True',
        '"meta-llama/Llama-2-7b-hf", quantization_config=BitsAndBytesConfig(load_in_4bit=True)',
        '"meta-llama/Llama-2-7b-hf", **kwargs',
        "MODEL",  # an id that is not static
    )
    loads = [f"AutoModelForCausalLM.from_pretrained({arguments})" for arguments in calls]
    loads += [  # load_model would load these with the causal LM head
        'AutoModel.from_pretrained("meta-llama/Llama-2-7b-hf")',
        'AutoModelForSequenceClassification.from_pretrained("meta-llama/Llama-2-7b-hf")',
    ]
    for index, call in enumerate(loads):
        text = f"import torch\nmodel = {call}\n"
        uri = open_document(client, workspace / f"no_engine_{index}.py", text)
        actions = await actions_at(client, uri, 1, 10)
        assert not [a for a in actions if "INT" in a.title], call
    text = 'pipe = pipeline("text-generation", model="meta-llama/Llama-2-7b-hf")\n'
    uri = open_document(client, workspace / "no_engine_pipeline.py", text)
    assert not [a for a in await actions_at(client, uri, 0, 10) if "INT" in a.title]
