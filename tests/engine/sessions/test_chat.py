"""Multi-turn sessions on the trained fixture model (memlens/engine/sessions/chat.py): a turn
on a kept cache predicts what recomputing the conversation predicts (exactly for hot and
cold sessions, within quantization error for warm ones), prefixes are shared without
being written to, and budget errors leave other sessions working."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from benchmarks.fixtures.byte_llama_model import load_byte_llama
from memlens.engine.sessions.chat import ChatEngine, Session
from memlens.engine.sessions.config import SessionStoreConfig, Tier
from memlens.engine.tokens import ByteCodec
from memlens.errors import DependencyError, SessionBudgetError, SessionLostError, UsageError

SYSTEM = "You write small, correct Python functions from the standard library."
TURNS = ("def parse_args(argv):", "import os.path", "class Queue:")
NEXT = "def read_lines(path):"
TOKEN_BYTES = 4 * 2 * 2 * 64 * 4  # fixture: 4 layers, K and V, 2 KV heads, head dim 64, fp32


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return load_byte_llama(torch.float32)[0]


def _engine(model: nn.Module, **options: object) -> ChatEngine:
    options.setdefault("budget_bytes", 64 << 20)
    return ChatEngine(model, ByteCodec(), SessionStoreConfig(**options))  # type: ignore[arg-type]


def _recompute(model: nn.Module, ids: tuple[int, ...]) -> torch.Tensor:
    """Next-token logits ``(V,)`` from one forward over the whole conversation."""
    with torch.no_grad():
        logits: torch.Tensor = model(input_ids=torch.tensor([ids])).logits[0, -1]
    return logits


def _replay(model: nn.Module, chunks: list[list[int]]) -> torch.Tensor:
    """Logits after feeding ``chunks`` one by one into one fresh cache, as the session
    fed them (same shapes, hence the same floating-point sums; the LM head on the last
    position only, as decoding runs it)."""
    from transformers import DynamicCache

    config: Any = model.config
    cache = DynamicCache(config=config)
    with torch.no_grad():
        for chunk in chunks:
            logits: torch.Tensor = model(
                input_ids=torch.tensor([chunk]), cache=cache, use_cache=True, logits_to_keep=1
            ).logits[0, -1]
    return logits


def _converse(session: Session, turns: tuple[str, ...] = TURNS) -> list[list[int]]:
    """Run ``turns``; return the chunks the model was fed (opening, each turn's prompt,
    then each reply token but the last, which the next turn feeds)."""
    chunks = [session.tokens] if session.tokens else []
    for text in turns:
        reply = "".join(session.send(text, max_new_tokens=6))
        assert reply and session.last_turn is not None
        fed = session.tokens[:-1]  # the last reply token is pending
        start, prompt = sum(map(len, chunks)), session.last_turn.prompt_tokens
        assert session.last_turn.reused_tokens == start  # nothing recomputed
        chunks.append(fed[start : start + prompt])
        chunks += [[token] for token in fed[start + prompt :]]
    return chunks


def test_a_hot_turn_predicts_exactly_what_replaying_the_conversation_does(
    model: nn.Module,
) -> None:
    session = _engine(model).session(system_prompt=SYSTEM)
    chunks = _converse(session)
    fed = sum(map(len, chunks))
    predicted = session.score(NEXT)
    assert session.last_turn is not None and session.last_turn.prompt_tokens < 40
    assert torch.equal(predicted.logits, _replay(model, [*chunks, list(predicted.ids[fed:])]))
    full = _recompute(model, predicted.ids)
    torch.testing.assert_close(predicted.logits, full, rtol=0, atol=1e-4)
    assert int(predicted.logits.argmax()) == int(full.argmax())


@pytest.mark.parametrize(("bits", "tolerance"), [(8, 0.05), (4, 0.5)])
def test_a_warm_turn_is_within_quantization_error(
    model: nn.Module, bits: int, tolerance: float
) -> None:
    engine = _engine(model, warm_bits=bits)
    session = engine.session(system_prompt=SYSTEM)
    _converse(session)
    hot_bytes = engine.stats().hot.bytes
    engine.store.demote(session.id, Tier.WARM)
    # per group of 32 fp32 values (128 B): 32 or 16 B of values, fp32 scale and minimum
    assert engine.stats().warm.bytes * 128 == hot_bytes * (32 * bits // 8 + 8)
    predicted = session.score(NEXT)
    error = (predicted.logits - _recompute(model, predicted.ids)).abs().max().item()
    assert 1e-4 < error < tolerance  # quantized, and close
    assert session.tier is Tier.HOT  # used, so promoted


@pytest.mark.parametrize("warm", [False, True])
def test_a_session_restored_from_cold_continues_exactly_as_before_the_spill(
    model: nn.Module, tmp_path: Path, warm: bool
) -> None:
    # twins in two engines: in one engine the second session reuses the first one's system
    # prompt blocks and prefills in other chunks, whose sums an AVX-512 CPU rounds otherwise
    twin, engine = (_engine(model, warm=warm, spill_dir=tmp_path) for _ in range(2))
    kept, spilled = twin.session(system_prompt=SYSTEM), engine.session(system_prompt=SYSTEM)
    for session in (kept, spilled):
        _converse(session, TURNS[:2])
    if warm:
        twin.store.demote(kept.id, Tier.WARM)
    engine.store.demote(spilled.id, Tier.COLD)
    assert spilled.tier is Tier.COLD and len(list(tmp_path.iterdir())) == 1
    assert torch.equal(spilled.score(NEXT).logits, kept.score(NEXT).logits)
    replies = ["".join(s.send(NEXT, max_new_tokens=8)) for s in (kept, spilled)]
    assert replies[0] == replies[1] and kept.tokens == spilled.tokens
    assert engine.stats().cold.restores == 1 and not list(tmp_path.iterdir())


def test_sessions_share_the_system_prompt_once_and_never_write_to_it(model: nn.Module) -> None:
    engine = _engine(model)
    first = engine.session(system_prompt=SYSTEM)
    blocks = len(first.tokens) // 16
    shared = [kv.layers[0][0].clone() for kv in engine.store.shared_prefix(first.tokens)]
    one = engine.stats()
    second = engine.session(system_prompt=SYSTEM)
    two = engine.stats()
    assert one.shared_blocks == two.shared_blocks == blocks > 0
    assert two.shared_bytes == one.shared_bytes == blocks * 16 * TOKEN_BYTES
    assert two.used_bytes - one.used_bytes == (len(first.tokens) - blocks * 16) * TOKEN_BYTES
    _converse(second)
    _converse(first, TURNS[:1])
    now = [kv.layers[0][0] for kv in engine.store.shared_prefix(first.tokens)]
    assert all(torch.equal(a, b) for a, b in zip(shared, now, strict=True))
    predicted = second.score(NEXT)
    full = _recompute(model, predicted.ids)
    torch.testing.assert_close(predicted.logits, full, rtol=0, atol=1e-4)


def test_a_reply_abandoned_midway_leaves_a_consistent_session(model: nn.Module) -> None:
    session = _engine(model).session(system_prompt=SYSTEM)
    pieces = session.send(TURNS[0], max_new_tokens=20)
    taken = [next(pieces) for _ in range(3)]
    pieces.close()  # the reader stops listening
    assert len(taken) == 3 and session.last_turn is not None
    assert session.last_turn.new_tokens == 3
    predicted = session.score(NEXT)
    torch.testing.assert_close(
        predicted.logits, _recompute(model, predicted.ids), rtol=0, atol=1e-4
    )


def test_a_session_closed_while_its_reply_streams_is_gone(model: nn.Module) -> None:
    engine = _engine(model)
    session = engine.session(system_prompt=SYSTEM)
    pieces = session.send(TURNS[0], max_new_tokens=20)
    next(pieces)
    session.close()
    pieces.close()  # ends quietly: there is nothing left to check in
    assert engine.stats().used_bytes == 0
    with pytest.raises(SessionLostError, match="closed or never existed"):
        session.score(NEXT)


def test_budget_errors_are_clear_and_other_sessions_keep_working(model: nn.Module) -> None:
    engine = _engine(model, budget_bytes=200 * TOKEN_BYTES, warm=False)
    small = engine.session()
    _converse(small, TURNS[:1])
    with pytest.raises(SessionBudgetError, match=r"the system prompt needs .* more than"):
        engine.session(system_prompt="x" * 300)
    other = engine.session()
    with pytest.raises(SessionBudgetError, match=rf"session {other.id} with .* more than"):
        "".join(other.send("y" * 300, max_new_tokens=4))
    assert "".join(small.send(TURNS[1], max_new_tokens=4))
    assert "".join(other.send("hi", max_new_tokens=4))


def test_many_sessions_under_a_small_budget_spill_and_come_back(
    model: nn.Module, tmp_path: Path
) -> None:
    engine = _engine(model, budget_bytes=240 * TOKEN_BYTES, spill_dir=tmp_path)
    sessions = [engine.session(system_prompt=SYSTEM) for _ in range(5)]
    for session in sessions:
        _converse(session, TURNS[:1])
        assert engine.stats().used_bytes <= engine.stats().budget_bytes
    assert engine.stats().warm.demotions >= 1
    for session in sessions:  # every session continues, from whatever tier
        predicted = session.score(NEXT)
        assert bytes(predicted.ids).decode().startswith(f"System: {SYSTEM}\nUser: {TURNS[0]}")
        error = (predicted.logits - _recompute(model, predicted.ids)).abs().max().item()
        assert error < 0.05  # hot, or back from INT8 (warm, or spilled while warm)
        assert engine.stats().used_bytes <= engine.stats().budget_bytes
    stats = engine.stats()
    assert stats.cold.spills >= 1 and stats.cold.restores >= 1 and stats.cold.restore_s > 0


def test_a_turn_that_fails_before_decoding_releases_its_reservation(
    model: nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: the turn's cache was built after the checkout but outside the
    try/finally, so a failure there left the session pinned ("already in a turn") and
    its reservation held against the budget for good."""
    engine = _engine(model)
    session = engine.session(system_prompt=SYSTEM)
    before = engine.stats()

    def no_cache(kv: object) -> None:
        raise DependencyError("no cache today")

    monkeypatch.setattr(engine, "cache", no_cache)
    with pytest.raises(DependencyError, match="no cache today"):
        "".join(session.send(TURNS[0], max_new_tokens=4))
    monkeypatch.undo()
    after = engine.stats()
    assert after.reserved_bytes == 0 and after.used_bytes == before.used_bytes
    assert session.tokens == _engine(model).session(system_prompt=SYSTEM).tokens
    assert "".join(session.send(TURNS[0], max_new_tokens=4))


@pytest.mark.parametrize("text", ["", "  \n\t"])
def test_an_empty_message_is_a_usage_error_and_changes_nothing(model: nn.Module, text: str) -> None:
    engine = _engine(model)
    session = engine.session(system_prompt=SYSTEM)
    tokens = session.tokens
    with pytest.raises(UsageError, match="the message is empty"):
        "".join(session.send(text))
    with pytest.raises(UsageError, match="the message is empty"):
        session.score(text)
    assert session.tokens == tokens and engine.stats().reserved_bytes == 0


def test_a_turn_stops_at_the_models_context_and_one_past_it_is_refused(
    model: nn.Module,
) -> None:
    """Regression: nothing bounded a conversation by the model's positions (1024 for the
    fixture), so it decoded past them (or, for learned positions, failed inside torch)."""
    engine = _engine(model)
    assert engine.context_tokens == 1024
    session = engine.session()
    prompt = len(session.prompt_ids("x" * 1000))  # "User: …\nAssistant:" around it
    "".join(session.send("x" * 1000, max_new_tokens=50))
    assert session.last_turn is not None and session.last_turn.new_tokens == 1024 - prompt
    assert len(session.tokens) == 1024
    reach = 1023 + len(session.prompt_ids("hi"))  # the cache, then the last reply token
    with pytest.raises(UsageError, match=f"would reach {reach} tokens, past the model's"):
        "".join(session.send("hi", max_new_tokens=1))
    with pytest.raises(UsageError, match="past the model's context of 1024"):
        session.score("hi")
    with pytest.raises(UsageError, match="would reach 1209 tokens"):
        engine.session(system_prompt="y" * 1200)  # "System: …\n" around it
    assert engine.stats().reserved_bytes == 0
