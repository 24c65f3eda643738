"""The session store's policy, budget and stats (memlens/engine/sessions/store.py), its
prefix blocks (sessions/prefix_blocks.py) and warm form (sessions/forms.py), on synthetic
KV caches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from memlens.engine.sessions.config import SessionStoreConfig, Tier
from memlens.engine.sessions.store import SessionStore
from memlens.errors import SessionBudgetError, SessionLostError, UsageError
from tests.support.synthetic_kv import TOKEN_BYTES, synthetic_kv

SYSTEM = list(range(100, 116))  # one 16-token block


def _store(tmp_path: Path | None, budget_tokens: int, **options: Any) -> SessionStore:
    config = SessionStoreConfig(
        budget_bytes=budget_tokens * TOKEN_BYTES, group_size=8, spill_dir=tmp_path, **options
    )
    return SessionStore(config)


def _create(store: SessionStore, extra: list[int], prefix: list[int] = SYSTEM) -> int:
    tokens = prefix + extra
    return store.create(tokens, synthetic_kv(tokens), shared_tokens=len(prefix))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"budget_bytes": 0}, "budget must be positive"),
        ({"warm_bits": 3}, "warm_bits must be 8 or 4"),
        ({"group_size": 3}, "group_size"),
        ({"block_tokens": 0}, "block_tokens"),
        ({"decay": 0.0}, "decay"),
        ({"version": 99}, "version 99"),
    ],
)
def test_bad_config_values_are_usage_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        SessionStoreConfig(**options)  # type: ignore[arg-type]


def test_group_size_must_divide_the_head_dimension() -> None:
    store = SessionStore(SessionStoreConfig(group_size=6))
    with pytest.raises(UsageError, match="does not divide the head dimension 8"):
        _create(store, [1, 2])


def test_sessions_with_one_system_prompt_hold_its_blocks_once() -> None:
    store = _store(None, 10_000)
    a = _create(store, [1, 2, 3])
    b = _create(store, [4, 5])
    stats = store.stats()
    assert stats.shared_blocks == 1 and stats.shared_bytes == 16 * TOKEN_BYTES
    assert stats.hot.bytes == 5 * TOKEN_BYTES  # own tokens only
    assert stats.used_bytes == 21 * TOKEN_BYTES
    tokens, work = store.checkout(b, 0)
    assert tokens == [*SYSTEM, 4, 5]
    torch.testing.assert_close(work.layers, synthetic_kv(tokens).layers, rtol=0, atol=0)
    store.checkin(b, tokens, work)
    store.close(a)
    assert store.stats().shared_blocks == 1
    store.close(b)
    assert store.stats().shared_blocks == 0 and store.used_bytes == 0


def test_working_copy_never_writes_into_shared_blocks() -> None:
    store = _store(None, 10_000)
    a = _create(store, [1])
    b = _create(store, [2])
    before = [k.clone() for k, _ in store.shared_prefix(SYSTEM)[0].layers]
    tokens, work = store.checkout(a, 4)
    for k, v in work.layers:
        k.add_(100.0)  # a careless writer of its working cache
        v.add_(100.0)
    store.checkin(a, tokens, work)
    after = [k for k, _ in store.shared_prefix(SYSTEM)[0].layers]
    assert all(torch.equal(x, y) for x, y in zip(before, after, strict=True))
    _, other = store.checkout(b, 0)
    torch.testing.assert_close(other.layers, synthetic_kv([*SYSTEM, 2]).layers)


def test_least_valued_hot_sessions_go_warm_first_then_warm_ones_go_cold(
    tmp_path: Path,
) -> None:
    # budget: the shared block and four hot 32-token sessions less the half of one that
    # INT8 saves (group 8: 8 B of values + 8 B of scale and minimum per 32 B)
    store = _store(tmp_path, 16 + 3 * 32 + 16, block_tokens=16)
    ids = [_create(store, list(range(n, n + 32))) for n in (0, 40, 80)]
    for _ in range(3):
        store.checkin(ids[0], *store.checkout(ids[0], 0))  # session 0 is used most
    fourth = _create(store, list(range(200, 232)))
    assert store.tier(ids[0]) is Tier.HOT and store.tier(fourth) is Tier.HOT
    # session 1 is older than session 2 and as rarely used: it alone went warm
    assert (store.tier(ids[1]), store.tier(ids[2])) == (Tier.WARM, Tier.HOT)
    for n in range(5):  # fill up until warm sessions must be spilled
        _create(store, list(range(300 + 40 * n, 332 + 40 * n)))
    stats = store.stats()
    assert stats.used_bytes <= stats.budget_bytes
    assert stats.cold.sessions >= 1 and stats.cold.spills == stats.cold.sessions
    assert stats.warm.demotions >= stats.cold.spills
    assert store.tier(ids[1]) is Tier.COLD  # the least valued went cold first


def test_checkout_promotes_and_counts_hits_promotions_and_restores(tmp_path: Path) -> None:
    store = _store(tmp_path, 10_000)
    sid = _create(store, list(range(20)))
    store.demote(sid, Tier.WARM)
    store.checkin(sid, *store.checkout(sid, 0))
    store.demote(sid, Tier.COLD)
    assert store.stats().cold.bytes > 0 and list(tmp_path.glob("*.safetensors"))
    tokens, work = store.checkout(sid, 0)
    store.checkin(sid, tokens, work)
    stats = store.stats()
    assert store.tier(sid) is Tier.HOT and not list(tmp_path.iterdir())  # file removed
    assert (stats.warm.hits, stats.cold.hits, stats.hot.promotions) == (1, 1, 2)
    assert (stats.cold.spills, stats.cold.restores) == (1, 1) and stats.cold.restore_s > 0
    assert stats.warm.demotions == 2 and stats.cold.demotions == 1


def test_without_spill_dir_a_full_budget_refuses_new_sessions_and_keeps_the_old() -> None:
    store = _store(None, 16 + 40, warm=False)
    first = _create(store, list(range(30)))
    with pytest.raises(SessionBudgetError, match="no session can move out of memory"):
        _create(store, list(range(50, 80)))
    assert store.tokens(first) == SYSTEM + list(range(30))
    assert store.stats().hot.sessions == 1 and store.used_bytes <= 56 * TOKEN_BYTES


def test_a_session_larger_than_the_budget_is_refused_and_others_keep_working(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path, 64)
    small = _create(store, [1, 2])
    with pytest.raises(SessionBudgetError, match="more than the whole session budget"):
        _create(store, list(range(100)))
    with pytest.raises(SessionBudgetError, match="more than the whole session budget"):
        store.checkout(small, 1000)  # a turn that could never fit
    tokens, work = store.checkout(small, 4)
    assert tokens == [*SYSTEM, 1, 2]
    store.checkin(small, tokens, work)


def test_closed_sessions_are_gone_and_say_so(tmp_path: Path) -> None:
    store = _store(tmp_path, 1000)
    sid = _create(store, [1])
    store.demote(sid, Tier.COLD)
    store.close(sid)
    assert sid not in store and not list(tmp_path.iterdir())
    with pytest.raises(SessionLostError, match="closed or never existed"):
        store.checkout(sid, 0)


def test_demote_refuses_warmer_or_disabled_tiers() -> None:
    store = _store(None, 1000)
    sid = _create(store, [1])
    with pytest.raises(UsageError, match="the cold tier is off"):
        store.demote(sid, Tier.COLD)
    store.demote(sid, Tier.WARM)
    with pytest.raises(UsageError, match="cannot move from warm to hot"):
        store.demote(sid, Tier.HOT)


def test_a_checkout_pins_even_a_session_with_no_tokens_and_checkin_needs_one() -> None:
    """Regression: "in a turn" was read from the bytes reserved, 0 for a session with no
    tokens checked out for no more, so it could be checked out twice; and a checkin
    without a checkout replaced a warm session's KV behind the store's back."""
    store = _store(None, 1000)
    empty = store.create([], synthetic_kv([1]).span(1), shared_tokens=0)
    tokens, work = store.checkout(empty, 0)
    with pytest.raises(UsageError, match=f"session {empty} is already in a turn"):
        store.checkout(empty, 0)
    with pytest.raises(UsageError, match="cannot move from hot to warm"):
        store.demote(empty, Tier.WARM)  # pinned
    store.checkin(empty, tokens, work)
    warm = _create(store, [1, 2])
    store.demote(warm, Tier.WARM)
    with pytest.raises(UsageError, match=f"session {warm} is not in a turn"):
        store.checkin(warm, [*SYSTEM, 1, 2], synthetic_kv([*SYSTEM, 1, 2]))
    assert store.tier(warm) is Tier.WARM and store.stats().warm.bytes > 0
