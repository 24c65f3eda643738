"""``memlens.profile`` on a training line sends the worker the model and the step's
TrainingConfig JSON (memlens/lsp_server/features/commands.py ``request_params``), checked
on an in-process server initialized as a client would."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types

from memlens.errors import UsageError
from memlens.lsp_server.features.commands import request_params
from memlens.lsp_server.server import MemlensServer
from memlens.profiler.training_config import TrainingConfig, config_from_json
from tests.support.training_sources import EXAMPLE


def _server_with(path: Path, text: str) -> tuple[MemlensServer, str]:
    server = MemlensServer()
    params = types.InitializeParams(
        capabilities=types.ClientCapabilities(), root_uri=path.parent.as_uri()
    )
    for _ in server.protocol.lsp_initialize(params):  # a generator: run it to its end
        pass
    uri = path.as_uri()
    server.workspace.put_text_document(
        types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
    )
    return server, uri


def test_profile_on_a_trainer_line_sends_the_training_config(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    server, uri = _server_with(tmp_path / "train.py", text)
    lines = text.splitlines()
    trainer = next(i for i, line in enumerate(lines) if line.startswith("trainer = Trainer("))
    params = request_params(server, "memlens.profile", (uri, trainer))
    assert params["model"] == "Qwen/Qwen2.5-0.5B"
    assert config_from_json(params["train"]) == TrainingConfig(batch=8, seq=1024)
    load = next(i for i, line in enumerate(lines) if "from_pretrained(MODEL, dtype" in line)
    assert "train" not in request_params(server, "memlens.profile", (uri, load))
    with pytest.raises(UsageError, match="no model load with a static id on line"):
        request_params(server, "memlens.compress", (uri, trainer))
