"""Sessions on a CUDA device (memlens/engine/sessions/chat.py with store.py, forms.py and
spill.py): every tier keeps the session's tensors on the model's GPU, the warm form
quantizes there, a spill file round-trips GPU tensors, and the predictions match the CPU
engine's. GPU only (issue 19)."""

from __future__ import annotations

from pathlib import Path

import torch

from benchmarks.fixtures.byte_llama_model import load_byte_llama
from memlens.engine.sessions.chat import ChatEngine
from memlens.engine.sessions.config import SessionStoreConfig, Tier
from memlens.engine.tokens import ByteCodec
from tests.support.cuda import needs_cuda

pytestmark = needs_cuda

SYSTEM = "You write small, correct Python functions from the standard library."
TURNS = ("def parse_args(argv):", "import os.path")
NEXT = "def read_lines(path):"


def _engine(device: str, spill: Path) -> ChatEngine:
    model = load_byte_llama(torch.float32)[0].to(device)
    config = SessionStoreConfig(budget_bytes=64 << 20, spill_dir=spill)
    return ChatEngine(model, ByteCodec(), config)


def _devices(engine: ChatEngine, session_id: int) -> set[str]:
    _, work = engine.store.checkout(session_id, 0)
    engine.store.checkin(session_id, engine.store.tokens(session_id), work)
    return {t.device.type for t in work.to_tensors().values()}


def test_every_tier_keeps_the_session_on_the_gpu_and_agrees_with_the_cpu(tmp_path: Path) -> None:
    replies, logits = {}, {}
    for device in ("cpu", "cuda"):
        engine = _engine(device, tmp_path / device)
        session = engine.session(system_prompt=SYSTEM)
        replies[device] = ["".join(session.send(text, max_new_tokens=6)) for text in TURNS]
        for tier in (Tier.WARM, Tier.COLD):
            engine.store.demote(session.id, tier)
            assert session.tier is tier
            scored = session.score(NEXT)
            assert scored.logits.device.type == device
            assert _devices(engine, session.id) == {device}  # restored where the model is
        logits[device] = scored.logits.cpu()
    assert replies["cpu"] == replies["cuda"]
    torch.testing.assert_close(logits["cuda"], logits["cpu"], rtol=1e-3, atol=0.05)
