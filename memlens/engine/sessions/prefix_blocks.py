"""Prefix sharing: KV blocks of common opening prompts held once, by chained block hashes.

A token sequence is cut into blocks of ``block_tokens`` tokens; block ``i``'s hash covers
block ``i``'s token ids and, through block ``i - 1``'s hash, every token before it (as in
vLLM's prefix caching), so equal hashes mean equal prefixes and hence equal KV. The pool
holds each block's keys and values once, with a count of the sessions that reference it,
and frees a block when that count reaches zero. Blocks are immutable: a session that
decodes builds its working cache from copies (``FullKV.concat``), never writing into them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from memlens.engine.sessions.forms import FullKV


def block_hashes(ids: Sequence[int], block_tokens: int) -> list[bytes]:
    """Chained hashes of the full blocks of ``ids`` (a trailing partial block has none)."""
    hashes: list[bytes] = []
    previous = b""
    for start in range(0, len(ids) - block_tokens + 1, block_tokens):
        digest = hashlib.blake2b(previous, digest_size=16)
        digest.update(b"".join(t.to_bytes(8, "little") for t in ids[start : start + block_tokens]))
        previous = digest.digest()
        hashes.append(previous)
    return hashes


@dataclass
class _Block:
    kv: FullKV
    """``(1, H, block_tokens, D)`` per layer."""
    refs: int
    """Sessions that reference the block (it is freed at 0)."""


class BlockPool:
    """Shared, reference-counted prefix blocks."""

    def __init__(self, block_tokens: int) -> None:
        self.block_tokens = block_tokens
        """Tokens per block."""
        self._blocks: dict[bytes, _Block] = {}

    def __len__(self) -> int:
        return len(self._blocks)

    @property
    def nbytes(self) -> int:
        """Bytes of all blocks held (each once, however many sessions share it)."""
        return sum(block.kv.nbytes for block in self._blocks.values())

    def matched(self, hashes: Sequence[bytes]) -> int:
        """How many of ``hashes``, from the first, the pool holds."""
        for count, digest in enumerate(hashes):
            if digest not in self._blocks:
                return count
        return len(hashes)

    def missing_bytes(self, hashes: Sequence[bytes], block_bytes: int) -> int:
        """Bytes that acquiring ``hashes`` would add, at ``block_bytes`` per new block."""
        return sum(block_bytes for digest in set(hashes) if digest not in self._blocks)

    def acquire(self, hashes: Sequence[bytes], kv: FullKV) -> None:
        """Take a reference to each block; ``kv`` covers the tokens of all ``hashes`` and
        provides the blocks the pool does not hold yet."""
        b = self.block_tokens
        for i, digest in enumerate(hashes):
            block = self._blocks.get(digest)
            if block is None:
                self._blocks[digest] = _Block(kv.span(i * b, (i + 1) * b), 1)
            else:
                block.refs += 1

    def release(self, hashes: Sequence[bytes]) -> None:
        """Drop one reference to each block; unreferenced blocks are freed."""
        for digest in hashes:
            block = self._blocks[digest]
            block.refs -= 1
            if block.refs == 0:
                del self._blocks[digest]

    def gather(self, hashes: Sequence[bytes]) -> list[FullKV]:
        """The blocks of ``hashes`` in order (shared tensors: never write into them)."""
        return [self._blocks[digest].kv for digest in hashes]
