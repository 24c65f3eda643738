"""Shared prefix blocks (memlens/engine/sessions/prefix_blocks.py): chained hashes, each
block held once however many sessions share it, reference counts that free a block with
its last session, and blocks that are copies nobody writes into."""

from __future__ import annotations

import torch

from memlens.engine.sessions.forms import FullKV
from memlens.engine.sessions.prefix_blocks import BlockPool, block_hashes
from tests.support.synthetic_kv import TOKEN_BYTES, synthetic_kv


def test_block_hashes_chain_over_the_whole_prefix() -> None:
    a = block_hashes([1, 2, 3, 4, 5, 6, 7], 2)
    assert len(a) == 3  # the trailing partial block has no hash
    assert block_hashes([1, 2, 3, 4], 2) == a[:2]
    # the same block after a different prefix is a different block
    assert block_hashes([9, 9, 3, 4], 2)[1] != a[1]


def test_pool_holds_each_block_once_and_frees_it_with_its_last_reference() -> None:
    pool = BlockPool(4)
    tokens = list(range(8))
    hashes = block_hashes(tokens, 4)
    pool.acquire(hashes, synthetic_kv(tokens))
    pool.acquire(hashes, synthetic_kv(tokens))
    assert len(pool) == 2 and pool.nbytes == 8 * TOKEN_BYTES
    assert pool.matched(block_hashes([0, 1, 2, 3, 9, 9, 9, 9], 4)) == 1
    pool.release(hashes)
    assert len(pool) == 2
    pool.release(hashes)
    assert len(pool) == 0 and pool.nbytes == 0


def test_a_shared_block_is_held_once_with_the_kv_of_its_first_owner() -> None:
    pool = BlockPool(4)
    system = list(range(100, 104))
    a, b = [*system, 1, 2, 3, 4], [*system, 5, 6, 7, 8]
    hashes_a, hashes_b = block_hashes(a, 4), block_hashes(b, 4)
    assert hashes_a[0] == hashes_b[0] and hashes_a[1] != hashes_b[1]
    assert pool.missing_bytes(hashes_b, TOKEN_BYTES * 4) == 2 * 4 * TOKEN_BYTES
    pool.acquire(hashes_a, synthetic_kv(a))
    assert pool.missing_bytes(hashes_b, TOKEN_BYTES * 4) == 4 * TOKEN_BYTES  # one block new
    other = synthetic_kv(b)
    pool.acquire(hashes_b, other)
    assert len(pool) == 3 and pool.nbytes == 12 * TOKEN_BYTES  # system block once
    [shared] = pool.gather(hashes_b[:1])
    for (key, value), (want_key, want_value) in zip(
        shared.layers, synthetic_kv(system).layers, strict=True
    ):
        assert torch.equal(key, want_key) and torch.equal(value, want_value)
        assert key.untyped_storage().data_ptr() != other.layers[0][0].untyped_storage().data_ptr()


def test_releasing_one_session_keeps_the_blocks_another_still_references() -> None:
    pool = BlockPool(4)
    system = list(range(100, 104))
    hashes_a = block_hashes([*system, 1, 2, 3, 4], 4)
    hashes_b = block_hashes([*system, 5, 6, 7, 8], 4)
    pool.acquire(hashes_a, synthetic_kv([*system, 1, 2, 3, 4]))
    pool.acquire(hashes_b, synthetic_kv([*system, 5, 6, 7, 8]))
    pool.release(hashes_a)
    assert len(pool) == 2 and pool.matched(hashes_b) == 2 and pool.matched(hashes_a) == 1
    pool.release(hashes_b)
    assert len(pool) == 0 and pool.matched(hashes_b) == 0


def test_blocks_are_copies_so_writing_into_the_source_kv_changes_nothing() -> None:
    pool = BlockPool(4)
    tokens = list(range(8))
    source = synthetic_kv(tokens)
    hashes = block_hashes(tokens, 4)
    pool.acquire(hashes, source)
    for key, value in source.layers:
        key.add_(100.0)
        value.add_(100.0)
    held = FullKV.concat(pool.gather(hashes))
    torch.testing.assert_close(held.layers, synthetic_kv(tokens).layers, rtol=0, atol=0)
