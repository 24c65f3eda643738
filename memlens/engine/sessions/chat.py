"""Multi-turn chat sessions over one model: ``ChatEngine`` and ``Session``.

A session keeps its KV cache between turns, so a turn prefills only the tokens it adds
(the user's message and the template around it) and streams the reply. Sessions live in
a :class:`~memlens.engine.sessions.store.SessionStore`: sessions that open with the same
system prompt share its KV blocks (``prefix_blocks.py``), and under the store's memory
budget idle sessions move from hot (full precision) to warm (INT8/INT4) to cold (spilled
to disk), coming back to hot when used; that policy is described in
``memlens/engine/sessions/store.py``. An engine and its store are for one thread at a time (a server
holds a lock around them); one session streams one reply at a time.

    engine = ChatEngine.load(
        "benchmarks/fixtures/byte_llama",
        store=SessionStoreConfig(budget_bytes=64 << 20, spill_dir=Path("spill")),
    )
    chat = engine.session(system_prompt="You answer in Python.")
    for piece in chat.send("def fib(n):", max_new_tokens=64):
        print(piece, end="", flush=True)
    print(engine.stats().to_json())
"""

from __future__ import annotations

import sys
import time
from collections.abc import Generator, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from memlens.engine.decoding import DecodeStats, ForwardCall, Sampling, stream
from memlens.engine.sessions.config import SessionStoreConfig, Tier
from memlens.engine.sessions.format import ChatFormat, chat_format
from memlens.engine.sessions.forms import FullKV
from memlens.engine.sessions.store import SessionStore, StoreStats
from memlens.engine.tokens import TextCodec
from memlens.engine.weights.config import WeightConfig
from memlens.errors import UnsupportedArchitectureError, UsageError


@dataclass
class TurnStats:
    """What one :meth:`Session.send` did, filled in as it runs."""

    tier: Tier
    """The tier the session was found in when the turn began."""
    reused_tokens: int = 0
    """Tokens whose KV the session already held (not recomputed)."""
    prompt_tokens: int = 0
    """Tokens the turn prefilled before the reply."""
    new_tokens: int = 0
    """Reply tokens chosen."""
    first_token_s: float = 0.0
    """Seconds from the start of the turn to its first reply token (restore, prefill)."""
    decode_s: float = 0.0
    """Seconds of model time after the first token."""

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types (the tier as its name)."""
        return {**asdict(self), "tier": self.tier.value}


@dataclass(frozen=True)
class NextToken:
    """The model's prediction after a user message (:meth:`Session.score`)."""

    ids: tuple[int, ...]
    """The whole conversation's token ids up to where the reply would begin."""
    logits: torch.Tensor
    """Next-token logits ``(V,)``."""


class ChatEngine:
    """A model, its tokenizer and a session store."""

    def __init__(
        self, model: nn.Module, codec: TextCodec, store: SessionStoreConfig | None = None
    ) -> None:
        self.model = model
        self.codec = codec
        self.store = SessionStore(store or SessionStoreConfig())
        """Where the sessions' caches live."""
        self.device = next(iter(model.parameters())).device
        """Where the model runs; token ids and KV caches live there too."""
        self.context_tokens: int | None = getattr(model.config, "max_position_embeddings", None)
        """Positions the model was built for (tokens): no turn goes past them; ``None``
        when its config does not say."""
        self._forward = ForwardCall.of(model)
        self._empty = self._kv_layout()

    @classmethod
    def load(
        cls,
        path: str | Path,
        weights: WeightConfig | None = None,
        store: SessionStoreConfig | None = None,
        dtype: torch.dtype = torch.bfloat16,
    ) -> ChatEngine:
        """A model folder or memlens checkpoint with its tokenizer; ``weights`` compresses
        the model first."""
        from memlens.engine.loading import load_model
        from memlens.engine.tokens import load_codec
        from memlens.engine.weights.quantize import compress_

        loaded = load_model(path, dtype)
        if not loaded.causal:
            raise UsageError(f"{path} is an encoder without an LM head: it cannot chat")
        if weights is not None:
            compress_(loaded.model, weights)
        return cls(loaded.model, load_codec(path), store)

    def session(self, system_prompt: str | None = None) -> Session:
        """A new conversation; sessions with the same system prompt share its KV cache."""
        form = chat_format(self.codec)
        ids = form.opening(system_prompt)
        self.reply_room(0, len(ids))
        self.store.admit(self._empty.bytes_per_token * len(ids), "the system prompt")
        shared = self.store.shared_prefix(ids)
        done = len(shared) * self.store.config.block_tokens
        cache = self.cache(FullKV.concat([self._empty, *shared]))
        if done < len(ids):
            with torch.no_grad():
                self._forward(self.model, self.ids(ids[done:]), cache)
        session_id = self.store.create(ids, self.kv(cache), shared_tokens=len(ids))
        return Session(self, session_id, form)

    def stats(self) -> StoreStats:
        """The session store's budget use and per-tier figures."""
        return self.store.stats()

    def reply_room(self, held: int, added: int) -> int:
        """Tokens a reply may have after feeding ``added`` tokens on top of ``held`` ones
        (``sys.maxsize`` when the context is unknown); UsageError when none are left."""
        if self.context_tokens is None:
            return sys.maxsize
        left = self.context_tokens - held - added
        if left < 1:
            raise UsageError(
                f"the conversation would reach {held + added} tokens, past the model's "
                f"context of {self.context_tokens}: start a new session (/reset in "
                "`memlens chat`) or send a shorter message"
            )
        return left

    def cache(self, kv: FullKV) -> Any:
        """A transformers ``DynamicCache`` that starts from ``kv``; it grows into new
        tensors (``torch.cat``), leaving those of ``kv`` as they were."""
        from memlens._transformers import transformers_module

        dynamic = transformers_module().DynamicCache
        return dynamic(ddp_cache_data=kv.layers, config=self.model.config)

    @staticmethod
    def kv(cache: Any) -> FullKV:
        """The tensors of a ``DynamicCache`` (shared, not copied)."""
        return FullKV(tuple((layer.keys, layer.values) for layer in cache.layers))

    def next_logits(self, kv: FullKV, ids: list[int]) -> torch.Tensor:
        """Logits ``(V,)`` after feeding ``ids`` on top of ``kv`` (left as it was)."""
        with torch.no_grad():
            logits = self._forward(self.model, self.ids(ids), self.cache(kv))  # (1, V)
        return logits[0]

    def ids(self, ids: list[int]) -> torch.Tensor:
        """Token ids as a ``(1, T)`` tensor on the model's device."""
        return torch.tensor([ids], dtype=torch.long, device=self.device)

    def _kv_layout(self) -> FullKV:
        """An empty KV cache of the model's shape, from a one-token dry run; refuses
        models whose cache is not plain per-layer keys and values (sliding windows)."""
        from memlens._transformers import transformers_module

        transformers = transformers_module()
        cache = transformers.DynamicCache(config=self.model.config)
        with torch.no_grad():
            self._forward(self.model, self.ids([0]), cache)
        kinds = {type(layer).__name__ for layer in cache.layers}
        if kinds != {"DynamicLayer"}:
            raise UnsupportedArchitectureError(
                f"sessions need a plain per-layer KV cache; this model's has {sorted(kinds)}"
            )
        return FullKV(  # (1, H, 0, D) per layer
            tuple((k[:, :, :0].clone(), v[:, :, :0].clone()) for k, v in self.kv(cache).layers)
        )


class Session:
    """One conversation; its KV cache stays in the engine's store between turns."""

    def __init__(self, engine: ChatEngine, session_id: int, form: ChatFormat) -> None:
        self._engine = engine
        self.id = session_id
        """The store's id of this session."""
        self._format = form
        self._pending: list[int] = []  # the last reply token: chosen, not yet fed
        self.last_turn: TurnStats | None = None
        """Figures of the latest :meth:`send`."""

    @property
    def tier(self) -> Tier:
        """Where the session's cache is now."""
        return self._engine.store.tier(self.id)

    @property
    def tokens(self) -> list[int]:
        """The conversation so far as token ids (what the cache holds, then the last
        reply token, which the next turn feeds)."""
        return self._engine.store.tokens(self.id) + self._pending

    def prompt_ids(self, text: str) -> list[int]:
        """The token ids user message ``text`` would feed next (its template and the last
        reply token, which the cache does not hold yet); UsageError when it is blank."""
        if not text.strip():
            raise UsageError("the message is empty: say something")
        return self._pending + self._format.turn(text)

    def score(self, text: str) -> NextToken:
        """The next-token logits after user message ``text``, computed on the session's
        cache; the session is left as it was (promoted to hot, as any access does)."""
        store = self._engine.store
        ids = self.prompt_ids(text)
        self._engine.reply_room(len(store.tokens(self.id)), len(ids))
        tokens, work = store.checkout(self.id, len(ids))
        try:
            logits = self._engine.next_logits(work, ids)
        finally:
            store.checkin(self.id, tokens, work)
        return NextToken(tuple(tokens + ids), logits)

    def send(
        self, text: str, max_new_tokens: int = 64, sampling: Sampling | None = None
    ) -> Generator[str, None, None]:
        """Stream the reply to user message ``text`` as text pieces, at most
        ``max_new_tokens`` tokens and no further than the model's context. Only the tokens
        this turn adds are prefilled; the session is pinned in memory until the generator
        ends or is closed (a reply abandoned midway keeps what was decoded so far)."""
        if max_new_tokens < 1:
            raise UsageError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        engine, store = self._engine, self._engine.store
        start = time.perf_counter()
        turn = TurnStats(self.tier)
        ids = self.prompt_ids(text)
        room = engine.reply_room(len(store.tokens(self.id)), len(ids))
        max_new_tokens = min(max_new_tokens, room)
        tokens, work = store.checkout(self.id, len(ids) + max_new_tokens)
        turn.reused_tokens, turn.prompt_tokens = len(tokens), len(ids)
        self.last_turn = turn
        decode = DecodeStats()
        chosen: list[int] = []
        pieces: list[str] = []
        cache: Any = None  # the DynamicCache the turn grows, once it exists

        def reply() -> Iterator[int]:
            nonlocal cache
            cache = engine.cache(work)
            steps = stream(
                engine.model,
                engine.ids(ids),
                max_new_tokens,
                sampling,
                engine.codec.eos_token_id,
                cache,
                decode,
            )
            for step in steps:
                chosen.append(int(step[0]))  # waits for the device
                if len(chosen) == 1:
                    turn.first_token_s = time.perf_counter() - start
                turn.new_tokens, turn.decode_s = len(chosen), decode.decode_s
                yield chosen[-1]

        try:  # from the checkout on, every way out checks the session back in
            for piece in engine.codec.stream_decode(reply()):
                pieces.append(piece)
                yield piece
        finally:
            self._end_turn(tokens, work, ids, chosen, cache, text, "".join(pieces))

    def _end_turn(
        self,
        tokens: list[int],
        work: FullKV,
        ids: list[int],
        chosen: list[int],
        cache: Any,
        text: str,
        reply: str,
    ) -> None:
        """Check the session back in: grown by what the model was fed, or as it was when
        the turn failed before the cache was consistent."""
        store = self._engine.store
        if self.id not in store:  # closed while its reply streamed
            return
        fed = tokens + ids + chosen[:-1]  # the last chosen token is never fed
        grown = self._engine.kv(cache) if cache is not None else work
        if chosen and all(k.shape[-2] == len(fed) for k, _ in grown.layers):
            store.checkin(self.id, fed, grown)
            eos = self._engine.codec.eos_token_id
            self._pending = [] if chosen[-1] == eos else chosen[-1:]
            self._format.replied(text, reply)
        else:
            store.checkin(self.id, tokens, work)

    def close(self) -> None:
        """Free the session's cache (memory and spill file); it cannot be used again."""
        self._engine.store.close(self.id)


__all__ = ["ChatEngine", "NextToken", "Session", "TurnStats"]
