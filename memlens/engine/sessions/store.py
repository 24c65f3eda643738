"""The session store: each session's KV cache kept between turns, in three tiers under
one memory budget.

What is counted
    ``budget_bytes`` bounds the memory the store holds: the own KV of every hot and warm
    session, every shared prefix block once (``prefix_blocks.py``), and, for the session
    being decoded, the reservation made when it was checked out (its whole working cache,
    shared prefix copy included, grown by the tokens the turn may add). Cold sessions
    cost no memory; their files are counted apart, in bytes on disk.

Tiers
    **hot**: full precision tensors; **warm**: INT8/INT4 group-wise
    (``forms.QuantizedKV``); **cold**: a safetensors file in ``spill_dir``
    (``spill.py``) holding whatever the session held when it was spilled.
    Shared prefix blocks stay in memory at full precision while any session, in any
    tier, references them.

Policy
    Each session has a value: its access frequency decayed by ``decay`` per store
    operation since its last access (``value = frequency * decay ** age``; an access adds
    one). Using a session (checkout) promotes it to hot and pins it until its turn ends.
    When the store would exceed its budget it demotes, least valued first, every unpinned
    hot session to warm (or straight to cold when the warm tier is off), then warm
    sessions to cold, until the new bytes fit. Nothing is ever dropped: when no session
    can move further down (no cold tier, or the disk refuses the file) the operation that
    needed the room fails with :class:`SessionBudgetError` or :class:`SpillError`; the
    sessions it had already moved stay where they went, and every session keeps its
    tokens and KV. A session larger than the whole budget is refused when it is created
    or checked out.

Failures
    A spill that fails (e.g. a full disk) leaves the session warm in memory. A spill file
    that is corrupt when read back marks that session lost, with the reason, and raises
    :class:`SpillError` naming the file; other sessions are unaffected. Spill file names
    carry a tag of their store, so stores sharing one folder never touch each other's.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import torch

from memlens.engine.sessions.config import SessionStoreConfig, Tier
from memlens.engine.sessions.forms import FullKV, QuantizedKV, SessionKV
from memlens.engine.sessions.prefix_blocks import BlockPool, block_hashes
from memlens.engine.sessions.spill import Spilled, read_spill, write_spill
from memlens.errors import SessionBudgetError, SessionLostError, SpillError, UsageError
from memlens.units import format_bytes


@dataclass(frozen=True)
class TierStats:
    """One tier's sessions and what moved through it since the store was made."""

    sessions: int
    """Sessions now in this tier."""
    bytes: int
    """Own KV bytes of those sessions: memory for hot and warm, file sizes for cold."""
    hits: int
    """Checkouts that found the session in this tier."""
    promotions: int
    """Sessions moved into this tier from a colder one."""
    demotions: int
    """Sessions moved into this tier from a warmer one."""
    spills: int
    """Spill files written (cold tier only)."""
    restores: int
    """Spill files read back (cold tier only)."""
    restore_s: float
    """Seconds spent reading and decoding spill files (cold tier only)."""


@dataclass(frozen=True)
class StoreStats:
    """The store at one moment: budget use and per-tier figures."""

    budget_bytes: int
    """The store's memory budget (bytes)."""
    used_bytes: int
    """Memory held now (bytes): hot and warm sessions, shared blocks, reservations."""
    shared_blocks: int
    """Shared prefix blocks held (each ``block_tokens`` tokens)."""
    shared_bytes: int
    """Memory of the shared prefix blocks, counted once (bytes)."""
    reserved_bytes: int
    """Memory reserved for sessions being decoded (bytes)."""
    lost: int
    """Sessions whose spill file was found corrupt (they stay listed until closed)."""
    hot: TierStats
    warm: TierStats
    cold: TierStats

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types, the three tiers under ``"tiers"``."""
        plain = asdict(self)
        plain["tiers"] = {tier.value: plain.pop(tier.value) for tier in Tier}
        return plain


@dataclass
class _Counters:
    hits: int = 0
    promotions: int = 0
    demotions: int = 0
    spills: int = 0
    restores: int = 0
    restore_s: float = 0.0


@dataclass
class _Entry:
    tokens: list[int]
    """Token ids whose KV the session holds, shared prefix included."""
    prefix: list[bytes]
    """Hashes of the shared prefix blocks it references."""
    token_bytes: int
    """Full-precision KV bytes per token (all layers, keys and values)."""
    device: torch.device
    """Where its tensors live in memory."""
    tier: Tier = Tier.HOT
    kv: SessionKV | None = None
    """Own KV (after the prefix) when hot or warm at rest."""
    spilled: Spilled | None = None
    pinned: bool = False
    """Checked out for a turn: hot, not to be demoted, its KV with the caller."""
    reserved: int = 0
    """Bytes reserved while pinned (0 at rest)."""
    frequency: float = 0.0
    """Accesses, decayed as of store operation ``last``."""
    last: int = 0
    """The store operation (clock tick) of the latest access."""
    lost: str | None = None
    """Why the session is lost (its spill file was corrupt); ``None`` while usable."""

    @property
    def memory(self) -> int:
        """Bytes of memory the session holds or has reserved now."""
        if self.pinned:
            return self.reserved
        return self.kv.nbytes if self.kv is not None else 0


class SessionStore:
    """Sessions' KV caches under one memory budget (policy in the module docstring)."""

    def __init__(self, config: SessionStoreConfig) -> None:
        self.config = config
        self.pool = BlockPool(config.block_tokens)
        """The shared prefix blocks."""
        self._entries: dict[int, _Entry] = {}
        self._counters = {tier: _Counters() for tier in Tier}
        self._clock = 0
        self._next_id = 0
        self._spills = 0
        self._tag = uuid.uuid4().hex[:8]  # spill file names of this store only

    # ---- queries -------------------------------------------------------------------

    def __contains__(self, session_id: int) -> bool:
        return session_id in self._entries

    def tier(self, session_id: int) -> Tier:
        """The tier a session is in now."""
        return self._entry(session_id).tier

    def tokens(self, session_id: int) -> list[int]:
        """The token ids a session's cache holds."""
        return list(self._entry(session_id).tokens)

    @property
    def used_bytes(self) -> int:
        """Memory held now (bytes), recomputed from the tensors."""
        return self.pool.nbytes + sum(entry.memory for entry in self._entries.values())

    def stats(self) -> StoreStats:
        """Budget use and per-tier figures now."""

        def tier_stats(tier: Tier) -> TierStats:
            members = [e for e in self._entries.values() if e.tier is tier and not e.lost]
            held = sum(
                (e.spilled.nbytes if e.spilled else 0) if tier is Tier.COLD else e.memory
                for e in members
            )
            return TierStats(len(members), held, **asdict(self._counters[tier]))

        return StoreStats(
            budget_bytes=self.config.budget_bytes,
            used_bytes=self.used_bytes,
            shared_blocks=len(self.pool),
            shared_bytes=self.pool.nbytes,
            reserved_bytes=sum(e.reserved for e in self._entries.values()),
            lost=sum(1 for e in self._entries.values() if e.lost),
            hot=tier_stats(Tier.HOT),
            warm=tier_stats(Tier.WARM),
            cold=tier_stats(Tier.COLD),
        )

    def shared_prefix(self, tokens: list[int]) -> list[FullKV]:
        """The pool's blocks that begin ``tokens`` (shared tensors: copy before writing)."""
        hashes = block_hashes(tokens, self.config.block_tokens)
        return self.pool.gather(hashes[: self.pool.matched(hashes)])

    # ---- lifecycle -----------------------------------------------------------------

    def admit(self, nbytes: int, what: str) -> None:
        """SessionBudgetError when ``nbytes`` alone exceed the budget."""
        if nbytes > self.config.budget_bytes:
            raise SessionBudgetError(
                f"{what} needs {format_bytes(nbytes)} of KV cache while decoding, more than "
                f"the whole session budget of {format_bytes(self.config.budget_bytes)}: "
                "raise the budget or shorten the conversation"
            )

    def create(self, tokens: list[int], kv: FullKV, shared_tokens: int) -> int:
        """Store a new session holding ``kv`` for ``tokens``; the full blocks among its
        first ``shared_tokens`` tokens are shared. Returns its id."""
        if kv.tokens != len(tokens):
            raise UsageError(f"{len(tokens)} tokens but a KV cache of {kv.tokens}")
        keys = kv.layers[0][0]  # (1, H, T, D)
        head_dim = int(keys.shape[-1])
        if self.config.warm and head_dim % self.config.group_size:
            raise UsageError(
                f"group_size {self.config.group_size} does not divide the head dimension "
                f"{head_dim}: pick a divisor of it"
            )
        token_bytes = kv.bytes_per_token
        self.admit(token_bytes * len(tokens), "this session")
        self._clock += 1
        b = self.config.block_tokens
        prefix = block_hashes(tokens[:shared_tokens], b)
        own = kv.span(len(prefix) * b)
        added = self.pool.missing_bytes(prefix, token_bytes * b) + own.nbytes
        self._make_room(added, exclude=None)
        self.pool.acquire(prefix, kv)
        session_id = self._next_id
        self._next_id += 1
        self._entries[session_id] = _Entry(
            list(tokens), prefix, token_bytes, keys.device, kv=own, frequency=1.0, last=self._clock
        )
        return session_id

    def checkout(self, session_id: int, extra_tokens: int) -> tuple[list[int], FullKV]:
        """Pin a session for a turn of up to ``extra_tokens`` new tokens: promote it to hot
        and return its tokens and a working KV cache of its own (prefix copied in)."""
        entry = self._live(session_id)
        if entry.pinned:
            raise UsageError(f"session {session_id} is already in a turn: finish that reply")
        self._clock += 1
        reserve = entry.token_bytes * (len(entry.tokens) + extra_tokens)
        prefix_bytes = entry.token_bytes * len(entry.prefix) * self.config.block_tokens
        what = f"session {session_id} with {extra_tokens} more tokens (and its shared prefix)"
        self.admit(reserve + prefix_bytes, what)
        self._make_room(reserve - entry.memory, exclude=session_id)
        self._counters[entry.tier].hits += 1
        entry.frequency = self._value(entry) + 1
        entry.last = self._clock
        work = FullKV.concat([*self.pool.gather(entry.prefix), self._load(session_id, entry)])
        # nothing below fails: the session is pinned only once its working cache exists
        if entry.tier is not Tier.HOT:
            self._counters[Tier.HOT].promotions += 1
        if entry.spilled is not None:
            entry.spilled.path.unlink(missing_ok=True)
            entry.spilled = None
        entry.tier, entry.kv, entry.pinned, entry.reserved = Tier.HOT, None, True, reserve
        return list(entry.tokens), work

    def checkin(self, session_id: int, tokens: list[int], kv: FullKV) -> None:
        """End a session's turn: it now holds ``kv`` for ``tokens`` (hot, unpinned)."""
        entry = self._live(session_id)
        if not entry.pinned:
            raise UsageError(f"session {session_id} is not in a turn: check it out first")
        if kv.tokens != len(tokens):
            raise UsageError(f"{len(tokens)} tokens but a KV cache of {kv.tokens}")
        entry.tokens = list(tokens)
        entry.kv = kv.span(len(entry.prefix) * self.config.block_tokens)
        entry.pinned, entry.reserved = False, 0
        self._make_room(0, exclude=None)  # only moves anything when the turn overran

    def close(self, session_id: int) -> None:
        """Forget a session: free its memory, release its prefix, delete its spill file."""
        entry = self._entries.pop(session_id, None)
        if entry is None:
            return
        self._clock += 1
        if not entry.lost:
            self.pool.release(entry.prefix)
        if entry.spilled is not None:
            entry.spilled.path.unlink(missing_ok=True)

    def demote(self, session_id: int, tier: Tier) -> None:
        """Move a session at rest to a colder ``tier`` now (as the policy would)."""
        entry = self._live(session_id)
        order = list(Tier)
        if entry.pinned or order.index(tier) <= order.index(entry.tier):
            raise UsageError(f"session {session_id} cannot move from {entry.tier} to {tier}")
        if tier not in self.config.tiers:
            raise UsageError(f"the {tier} tier is off in this store's config")
        self._clock += 1
        while entry.tier is not tier:
            self._step_down(session_id, entry)

    # ---- internals -----------------------------------------------------------------

    def _entry(self, session_id: int) -> _Entry:
        entry = self._entries.get(session_id)
        if entry is None:
            raise SessionLostError(f"session {session_id} is closed or never existed")
        return entry

    def _live(self, session_id: int) -> _Entry:
        entry = self._entry(session_id)
        if entry.lost:
            raise SessionLostError(f"session {session_id} is lost: {entry.lost}; close it")
        return entry

    def _value(self, entry: _Entry) -> float:
        """How much ``entry`` is worth keeping warm: decayed access frequency now."""
        return entry.frequency * self.config.decay ** (self._clock - entry.last)

    def _load(self, session_id: int, entry: _Entry) -> FullKV:
        """The session's own KV at full precision, read back from disk if cold."""
        kv = entry.kv
        if entry.tier is Tier.COLD:
            assert entry.spilled is not None
            start = time.perf_counter()
            try:
                kv = read_spill(entry.spilled, session_id, entry.tokens, entry.device)
            except SpillError as exc:
                entry.lost = str(exc)
                self.pool.release(entry.prefix)
                raise
            counters = self._counters[Tier.COLD]
            counters.restores += 1
            counters.restore_s += time.perf_counter() - start
        assert kv is not None
        return kv.dequantize() if isinstance(kv, QuantizedKV) else kv

    def _step_down(self, session_id: int, entry: _Entry) -> None:
        """Move ``entry`` one enabled tier colder."""
        assert entry.kv is not None
        if entry.tier is Tier.HOT and Tier.WARM in self.config.tiers:
            assert isinstance(entry.kv, FullKV)
            entry.kv = QuantizedKV.of(entry.kv, self.config.warm_bits, self.config.group_size)
            entry.tier = Tier.WARM
        else:
            assert self.config.spill_dir is not None
            self._spills += 1
            name = f"session-{self._tag}-{session_id}-{self._spills}.safetensors"
            path = self.config.spill_dir / name
            entry.spilled = write_spill(path, session_id, entry.tokens, entry.kv)
            entry.kv = None
            entry.tier = Tier.COLD
            self._counters[Tier.COLD].spills += 1
        self._counters[entry.tier].demotions += 1

    def _make_room(self, nbytes: int, exclude: int | None) -> None:
        """Demote sessions, least valued first, until ``nbytes`` more fit the budget."""
        while self.used_bytes + nbytes > self.config.budget_bytes:
            victim = self._victim(exclude)
            if victim is None:
                raise SessionBudgetError(
                    f"the session budget of {format_bytes(self.config.budget_bytes)} is full "
                    f"({format_bytes(self.used_bytes)} held, {format_bytes(nbytes)} more "
                    "needed) and no session can move out of memory: close sessions, raise "
                    "the budget" + ("" if self.config.spill_dir else " or set a spill folder")
                )
            self._step_down(victim, self._entries[victim])

    def _victim(self, exclude: int | None) -> int | None:
        """The least valued session that can move colder: hot ones before warm ones."""
        movable = [Tier.HOT] if len(self.config.tiers) > 1 else []
        if Tier.COLD in self.config.tiers:
            movable.append(Tier.WARM)
        for tier in movable:
            candidates = [
                (self._value(entry), session_id)
                for session_id, entry in self._entries.items()
                if entry.tier is tier
                and not entry.pinned
                and not entry.lost
                and session_id != exclude
            ]
            if candidates:
                return min(candidates)[1]
        return None


__all__ = ["SessionStore", "StoreStats", "TierStats"]
