"""Property: random create/append/access/close sequences under a budget never exceed it
and never lose a session that was not closed (memlens/engine/sessions/store.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from memlens.engine.sessions.config import SessionStoreConfig
from memlens.engine.sessions.store import SessionStore
from memlens.errors import SessionBudgetError
from tests.support.synthetic_kv import TOKEN_BYTES, synthetic_kv

PREFIXES: tuple[list[int], ...] = (
    [],
    list(range(200, 208)),
    list(range(200, 212)),
)  # the last two share a block
BUDGET_TOKENS = 96

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.integers(0, 2), st.integers(1, 40)),
        st.tuples(st.just("append"), st.integers(0, 7), st.integers(1, 30)),
        st.tuples(st.just("access"), st.integers(0, 7), st.just(0)),
        st.tuples(st.just("close"), st.integers(0, 7), st.just(0)),
    ),
    min_size=3,
    max_size=25,
)


def _check(store: SessionStore, open_sessions: dict[int, list[int]]) -> None:
    stats = store.stats()
    assert store.used_bytes <= BUDGET_TOKENS * TOKEN_BYTES
    assert stats.reserved_bytes == 0  # between operations, nothing stays pinned
    assert stats.hot.sessions + stats.warm.sessions + stats.cold.sessions == len(open_sessions)
    for sid, tokens in open_sessions.items():
        assert store.tokens(sid) == tokens


def _run(ops: list[tuple[str, int, int]], spill_dir: Path | None, warm_bits: int) -> None:
    config = SessionStoreConfig(
        budget_bytes=BUDGET_TOKENS * TOKEN_BYTES,
        warm_bits=warm_bits,  # type: ignore[arg-type]
        group_size=8,
        block_tokens=4,
        spill_dir=spill_dir,
    )
    store = SessionStore(config)
    open_sessions: dict[int, list[int]] = {}
    fresh = iter(range(10_000))
    tolerance = 0.02 if warm_bits == 8 else 0.15  # values lie in [-1, 1]
    for op, which, size in ops:
        ids = sorted(open_sessions)
        sid = ids[which % len(ids)] if ids else None
        needed = len(PREFIXES[which]) + size if op == "create" else 0
        if sid is not None and op in ("append", "access"):
            needed = len(open_sessions[sid]) + size
        try:
            if op == "create":
                tokens = PREFIXES[which] + [next(fresh) for _ in range(size)]
                new = store.create(tokens, synthetic_kv(tokens), len(PREFIXES[which]))
                open_sessions[new] = tokens
            elif op in ("append", "access") and sid is not None:
                tokens, work = store.checkout(sid, size)
                assert store.used_bytes <= BUDGET_TOKENS * TOKEN_BYTES  # pinned, reserved
                expected = synthetic_kv(tokens).layers
                torch.testing.assert_close(work.layers, expected, atol=tolerance, rtol=0)
                added = [next(fresh) for _ in range(size if op == "append" else 0)]
                grown = type(work).concat([work, synthetic_kv(added, len(tokens))])
                store.checkin(sid, tokens + added, grown)
                open_sessions[sid] = tokens + added
            elif op == "close" and sid is not None:
                store.close(sid)
                del open_sessions[sid]
        except SessionBudgetError:
            # with a cold tier, refused only when the session (with the shared blocks,
            # at most 12 tokens, which stay in memory) cannot fit the budget
            assert spill_dir is None or needed + 12 > BUDGET_TOKENS
        _check(store, open_sessions)


@pytest.mark.parametrize(("cold", "warm_bits"), [(True, 8), (True, 4), (False, 8)])
@settings(max_examples=40, deadline=None)
@given(ops=_ops)
def test_random_sessions_stay_within_budget_and_are_never_lost(
    ops: list[tuple[str, int, int]], cold: bool, warm_bits: int
) -> None:
    with tempfile.TemporaryDirectory() as spill:
        _run(ops, Path(spill) if cold else None, warm_bits)
