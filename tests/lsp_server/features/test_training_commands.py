"""``memlens.profile`` on a training line sends the worker the model and the step's
TrainingConfig JSON (memlens/lsp_server/features/commands.py ``request_params``), checked
on an in-process server initialized as a client would."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types

from benchmarks.fixtures.byte_llama_model import fixture_dir
from memlens.errors import UsageError
from memlens.lsp_server.features.commands import STALE_LINES, request_params
from memlens.lsp_server.server import MemlensServer
from memlens.profiler.training_config import (
    Optimizer,
    TrainingConfig,
    TrainMethod,
    config_from_json,
)
from memlens.worker.methods import RequestContext
from memlens.worker.tasks.profile import profile
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


def test_a_lens_made_before_an_edit_still_runs_its_target(tmp_path: Path) -> None:
    """Regression: after a quick fix added a line above the Trainer, VS Code ran the lens it
    still showed there with the Trainer's old line, and the server answered "no model load
    with a static id on line 35" (into the debug log only)."""
    text = EXAMPLE.read_text().replace(
        "    logging_steps=10,\n", "    logging_steps=10,\n    gradient_checkpointing=True,\n"
    )
    server, uri = _server_with(tmp_path / "train.py", text)
    lines = text.splitlines()
    trainer = next(i for i, line in enumerate(lines) if line.startswith("trainer = Trainer("))
    params = request_params(server, "memlens.profile", (uri, trainer - 1))  # the old line
    assert config_from_json(params["train"]) == TrainingConfig(
        batch=8, seq=1024, gradient_checkpointing=True
    )
    far = trainer - 1 - STALE_LINES - 1  # nothing within reach: still an error
    with pytest.raises(UsageError, match=f"no model load with a static id on line {far + 1}"):
        request_params(server, "memlens.profile", (uri, far))


def test_the_worker_measures_the_step_the_script_states(tmp_path: Path) -> None:
    """The params a training line sends run in the worker's ``memlens.profile`` (the
    byte-level fixture's weights are on disk: one real step is measured)."""
    pytest.importorskip("peft")
    text = (
        "import torch\nfrom peft import LoraConfig, get_peft_model\n"
        "from transformers import AutoModelForCausalLM\n"
        f"model = AutoModelForCausalLM.from_pretrained({str(fixture_dir())!r})\n"
        'model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))\n'
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "ids = torch.randint(0, 256, (1, 32))\n"
        "model(ids, labels=ids).loss.backward()\n"
    )
    server, uri = _server_with(tmp_path / "loop.py", text)
    params = request_params(server, "memlens.profile", (uri, 7))
    expected = TrainingConfig(
        method=TrainMethod.LORA,
        lora_rank=4,
        lora_targets=("q_proj", "v_proj"),
        optimizer=Optimizer.SGD,
        batch=1,
        seq=32,
    )
    assert config_from_json(params["train"]) == expected
    report = profile(params, RequestContext(request_id=1, write=lambda message: None))
    assert report["kind"] == "training-profile"
    assert report["measured"]["trainable_params"] == report["estimate"]["trainable_params"]
    assert report["measured"]["peak_bytes"] == pytest.approx(
        report["estimate"]["peak_bytes"], rel=0.15
    )
