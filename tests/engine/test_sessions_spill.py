"""The cold tier (memlens/engine/session_spill.py): exact round trips, and what a corrupt
file or a full disk does to one session and not to the others.

Bad inputs tried: a file with flipped tensor bytes, a truncated file, a file of garbage,
a deleted file, another session's file under this one's name, a disk that fills up while
writing (ENOSPC injected into the writer), and a spill folder that is a file.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from memlens.engine import session_spill
from memlens.engine.session_config import SessionStoreConfig, Tier
from memlens.engine.session_errors import SessionLostError, SpillError
from memlens.engine.session_kv import FullKV, QuantizedKV
from memlens.engine.session_spill import read_spill, write_spill
from memlens.engine.session_store import SessionStore
from tests.engine.synthetic_kv import TOKEN_BYTES, synthetic_kv


def _store(spill_dir: Path, budget_tokens: int = 10_000) -> SessionStore:
    config = SessionStoreConfig(
        budget_bytes=budget_tokens * TOKEN_BYTES, group_size=8, spill_dir=spill_dir
    )
    return SessionStore(config)


def _create(store: SessionStore, tokens: list[int]) -> int:
    return store.create(tokens, synthetic_kv(tokens), shared_tokens=0)


@pytest.mark.parametrize("form", ["full", "int8", "int4"])
def test_spill_files_read_back_bit_for_bit(tmp_path: Path, form: str) -> None:
    tokens = list(range(40))
    full = synthetic_kv(tokens)
    kv = full if form == "full" else QuantizedKV.of(full, 8 if form == "int8" else 4, 8)
    spilled = write_spill(tmp_path / "s.safetensors", 3, tokens, kv)
    assert spilled.nbytes == spilled.path.stat().st_size
    assert not list(tmp_path.glob("*.partial"))
    back = read_spill(spilled.path, 3, tokens)
    assert type(back) is type(kv)
    assert all(
        torch.equal(a, b)
        for a, b in zip(back.to_tensors().values(), kv.to_tensors().values(), strict=True)
    )


def _flip_a_tensor_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # tensor data is at the end of a safetensors file
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00" * 64)


def _delete(path: Path) -> None:
    path.unlink()


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (_flip_a_tensor_byte, "checksum mismatch"),
        (_truncate, "not a memlens spill file"),
        (_garbage, "not a memlens spill file"),
        (_delete, "cannot read it"),
    ],
)
def test_a_corrupt_spill_file_loses_only_its_session(
    tmp_path: Path, damage: Callable[[Path], None], why: str
) -> None:
    store = _store(tmp_path)
    bad = _create(store, list(range(30)))
    good = _create(store, list(range(50, 90)))
    store.demote(bad, Tier.COLD)
    store.demote(good, Tier.COLD)
    (path,) = [p for p in tmp_path.iterdir() if p.name.startswith(f"session-{bad}-")]
    damage(path)
    with pytest.raises(SpillError, match=why) as raised:
        store.checkout(bad, 0)
    assert str(path) in str(raised.value) and "the session is lost" in str(raised.value)
    with pytest.raises(SessionLostError, match=f"session {bad} is lost: spill file {path}"):
        store.checkout(bad, 0)
    assert store.stats().lost == 1 and store.stats().cold.sessions == 1
    tokens, work = store.checkout(good, 2)  # the other session is unaffected
    assert tokens == list(range(50, 90))
    torch.testing.assert_close(work.layers, synthetic_kv(tokens).layers, atol=0.02, rtol=0)
    store.checkin(good, tokens, work)
    store.close(bad)
    assert store.stats().lost == 0


def test_a_file_of_another_session_is_refused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = _create(store, [1, 2, 3])
    second = _create(store, [4, 5, 6])
    store.demote(first, Tier.COLD)
    store.demote(second, Tier.COLD)
    a, b = sorted(tmp_path.iterdir())
    os.replace(b, a)  # the second session's file now sits under the first one's name
    with pytest.raises(SpillError, match="another session's tokens"):
        store.checkout(first, 0)


def _full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    def write_half_then_fail(path: Path, data: bytes) -> None:
        path.write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(session_spill, "_write_partial", write_half_then_fail)


def test_a_full_disk_keeps_the_session_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path)
    sid = _create(store, list(range(30)))
    store.demote(sid, Tier.WARM)
    _full_disk(monkeypatch)
    with pytest.raises(SpillError, match=r"the disk is full.*stays in memory"):
        store.demote(sid, Tier.COLD)
    assert store.tier(sid) is Tier.WARM and not list(tmp_path.iterdir())  # no .partial left
    monkeypatch.undo()
    tokens, work = store.checkout(sid, 0)
    torch.testing.assert_close(work.layers, synthetic_kv(tokens).layers, atol=0.02, rtol=0)


def test_a_full_disk_under_budget_pressure_fails_the_new_session_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path, budget_tokens=100)
    old = [_create(store, list(range(n, n + 30))) for n in (0, 40)]
    _full_disk(monkeypatch)
    with pytest.raises(SpillError, match="could not spill session"):
        _create(store, list(range(200, 280)))
    stats = store.stats()
    assert stats.used_bytes <= stats.budget_bytes
    assert stats.hot.sessions + stats.warm.sessions == 2 and stats.cold.sessions == 0
    monkeypatch.undo()
    for sid in old:
        tokens, work = store.checkout(sid, 0)
        torch.testing.assert_close(work.layers, synthetic_kv(tokens).layers, atol=0.02, rtol=0)
        store.checkin(sid, tokens, work)
    _create(store, list(range(200, 280)))  # with room on disk again it goes through
    assert store.stats().cold.sessions >= 1


def test_a_spill_folder_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    blocked = tmp_path / "spill"
    blocked.write_text("not a folder")
    store = _store(blocked)
    sid = _create(store, [1, 2, 3])
    with pytest.raises(SpillError, match="check that the folder exists and is writable"):
        store.demote(sid, Tier.COLD)
    assert store.tier(sid) is Tier.WARM


def test_full_kv_spills_as_full_when_the_warm_tier_is_off(tmp_path: Path) -> None:
    config = SessionStoreConfig(budget_bytes=1 << 20, warm=False, spill_dir=tmp_path)
    store = SessionStore(config)
    tokens = list(range(20))
    sid = store.create(tokens, synthetic_kv(tokens), shared_tokens=0)
    store.demote(sid, Tier.COLD)
    (path,) = tmp_path.iterdir()
    assert isinstance(read_spill(path, sid, tokens), FullKV)
    _, work = store.checkout(sid, 0)
    assert all(
        torch.equal(a, b)
        for a, b in zip(work.layers[0], synthetic_kv(tokens).layers[0], strict=True)
    )
