"""The cold tier (memlens/engine/sessions/spill.py): exact round trips, and what a corrupt
file or a full disk does to one session and not to the others.

Bad inputs tried: a file with flipped tensor bytes, a truncated file, a file of garbage,
a deleted file, another session's file under this one's name, a valid spill file of the
same session with other shapes (its own checksum right), headers of another version, an
unknown form or dtype, or not an object, a disk that fills up while writing (ENOSPC
injected into the writer), and a spill folder that is a file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load, save

from memlens.engine.sessions import spill
from memlens.engine.sessions.config import SessionStoreConfig, Tier
from memlens.engine.sessions.forms import FullKV, QuantizedKV
from memlens.engine.sessions.spill import Spilled, read_spill, write_spill
from memlens.engine.sessions.store import SessionStore
from memlens.errors import SessionLostError, SpillError
from tests.support.synthetic_kv import TOKEN_BYTES, synthetic_kv


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
    back = read_spill(spilled, 3, tokens)
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
    (path,) = [p for p in tmp_path.iterdir() if p.name.split("-")[2] == str(bad)]
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

    monkeypatch.setattr(spill, "_write_partial", write_half_then_fail)


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
    assert store.stats().cold.sessions == 1
    spilled = store._entries[sid].spilled
    assert spilled is not None and isinstance(read_spill(spilled, sid, tokens), FullKV)
    _, work = store.checkout(sid, 0)
    assert all(
        torch.equal(a, b)
        for a, b in zip(work.layers[0], synthetic_kv(tokens).layers[0], strict=True)
    )


def test_a_valid_spill_file_with_other_shapes_is_refused(tmp_path: Path) -> None:
    """Regression: the file was checked only against the checksum in its own header, so a
    well-formed file of the same session and tokens but other tensors was accepted."""
    tokens = list(range(10))
    spilled = write_spill(tmp_path / "s.safetensors", 1, tokens, synthetic_kv(tokens))
    one_head = tuple((k[:, :1], v[:, :1]) for k, v in synthetic_kv(tokens).layers)  # (1, 1, T, D)
    write_spill(spilled.path, 1, tokens, FullKV(one_head))  # of two heads, it holds one
    with pytest.raises(SpillError, match="the file differs from the one written"):
        read_spill(spilled, 1, tokens)


def _rewrite_header(path: Path, **changes: object) -> Spilled:
    """Rewrite the file's header; the result is what a writer of that header would have
    kept (so only the header's own checks can refuse it)."""
    named = load(path.read_bytes())
    with safe_open(str(path), "pt") as handle:
        header = json.loads(handle.metadata()[spill._HEADER])
    header.update(changes)
    data = save(named, metadata={spill._HEADER: json.dumps(header)})
    path.write_bytes(data)
    return Spilled(path, len(data), hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"version": 2}, "format version 2, expected 1"),
        ({"form": "int3"}, "unknown form 'int3'"),
        ({"dtype": "torch.load"}, "dtype 'torch.load'"),
        ({"num_layers": 5}, "incomplete header or tensors"),
    ],
)
def test_headers_of_another_version_or_an_unknown_form_are_refused(
    tmp_path: Path, changes: dict[str, object], why: str
) -> None:
    tokens = list(range(10))
    kv = QuantizedKV.of(synthetic_kv(tokens), 4, 8)
    spilled = write_spill(tmp_path / "s.safetensors", 1, tokens, kv)
    with pytest.raises(SpillError, match=why):
        read_spill(_rewrite_header(spilled.path, **changes), 1, tokens)


def test_a_header_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.safetensors"
    data = save({"x": torch.zeros(1)}, metadata={spill._HEADER: "[1, 2]"})
    path.write_bytes(data)
    spilled = Spilled(path, len(data), hashlib.sha256(data).hexdigest())
    with pytest.raises(SpillError, match="not a memlens spill file: the header is a list"):
        read_spill(spilled, 1, [])


def test_stores_sharing_a_spill_folder_keep_their_own_files(tmp_path: Path) -> None:
    """Regression: files were named by session id only, so two stores (two ``memlens
    chat`` processes) on one folder overwrote and deleted each other's files."""
    first, second = _store(tmp_path), _store(tmp_path)
    tokens = list(range(30))
    mine, theirs = _create(first, tokens), _create(second, tokens)
    assert mine == theirs == 0
    first.demote(mine, Tier.COLD)
    second.demote(theirs, Tier.COLD)
    assert len(list(tmp_path.iterdir())) == 2
    second.close(theirs)
    restored, work = first.checkout(mine, 0)
    assert restored == tokens
    torch.testing.assert_close(work.layers, synthetic_kv(tokens).layers, atol=0.02, rtol=0)


def test_a_session_with_no_own_tokens_spills_and_comes_back(tmp_path: Path) -> None:
    """A session whose whole opening is shared blocks (or that has no opening) holds
    zero-token tensors; they go warm, cold and back."""
    store = _store(tmp_path)
    prefix = list(range(16))
    sid = store.create(prefix, synthetic_kv(prefix), shared_tokens=16)
    empty = store.create([], FullKV.concat([synthetic_kv([1])]).span(1), shared_tokens=0)
    for session in (sid, empty):
        store.demote(session, Tier.COLD)
    tokens, work = store.checkout(sid, 4)
    assert tokens == prefix and work.tokens == 16
    tokens, work = store.checkout(empty, 4)
    assert tokens == [] and [k.shape for k, _ in work.layers] == [(1, 2, 0, 8)] * 2
