"""memlens multi-turn sessions side by side with recomputing, and the session tiers with
hot-only storage, in one run.

1. Multi-turn, on a TinyLlama-1.1B-shaped model with random weights: a conversation of
   four long turns (a system prompt, then messages of about 450 tokens, 16-token
   replies), so that turn 5 begins after about 2,000 tokens. Time to first token of turn
   5 (a short message) with the session's kept cache, against a full recompute: one
   prefill of the whole conversation in a fresh cache, as a server without sessions
   does. Median of ``--reps`` turns after one warm-up turn.
2. Tiers, on the trained byte-level fixture (bf16): sessions of about 512 tokens that
   share a 64-token system prompt, created until the budget refuses one (or ``--cap``
   sessions are created), for hot only, hot + warm INT8, hot + warm INT4, and hot + warm
   INT4 + cold. A session counts as served once it has also taken a follow-up turn (when
   one cannot, the newest session still waiting is closed to make room); the time to
   first token of those turns is split by the tier the session was found in, and the cold
   tier's restore latency (read, check, decode one file) is its own column.

Run: python benchmarks/engine_sessions.py [--quick] [--devices cuda,cpu]
(writes benchmarks/results/engine_sessions.json)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from fixtures.byte_llama_model import heldout_text, load_byte_llama
from rich.console import Console
from rich.table import Table
from torch import nn

from memlens.engine.decoding import stream
from memlens.engine.loading import random_model
from memlens.engine.sessions.chat import ChatEngine, Session
from memlens.engine.sessions.config import SessionStoreConfig, Tier
from memlens.engine.tokens import ByteCodec
from memlens.errors import SessionBudgetError
from memlens.profiler.configs import resolve_config
from memlens.units import format_bytes

RESULTS = Path(__file__).parent / "results" / "engine_sessions.json"
SPEED_MODEL = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
SYSTEM = "You are a careful reviewer of Python code. Answer briefly and precisely."
REPLY_TOKENS = 16


def _messages(count: int, size: int, offset: int = 0) -> list[str]:
    """``count`` slices of held-out source text of ``size`` bytes (ASCII, one token each)."""
    text = heldout_text().encode("ascii", errors="ignore").decode()
    return [text[offset + i * size : offset + (i + 1) * size] for i in range(count)]


class _WideByteCodec(ByteCodec):
    """Bytes in; any id out (a random model's vocabulary is wider than 256): ids past the
    byte range print as ``<id>``."""

    def stream_decode(self, ids: Iterable[int]) -> Iterator[str]:
        for token in ids:
            yield chr(token) if token < 128 else f"<{token}>"


def _recompute_ttft(model: nn.Module, engine: ChatEngine, ids: list[int]) -> float:
    """Seconds to the first token from one prefill of ``ids`` in a fresh cache."""
    start = time.perf_counter()
    first = next(stream(model, engine.ids(ids), 1))
    int(first[0])  # waits for the device
    return time.perf_counter() - start


def multi_turn(device: str, quick: bool, reps: int) -> dict[str, Any]:
    """Turn-5 time to first token, session reuse vs full recompute."""
    config = dict(resolve_config(SPEED_MODEL, allow_network=False).config)
    if quick:
        config["num_hidden_layers"] = 2
    # turns past the 2,048 positions of TinyLlama would be refused; random weights do not
    # care where RoPE positions end, and the measured turns begin at about 2,000 tokens
    config["max_position_embeddings"] = 4096
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = random_model(config, dtype).to(device)
    engine = ChatEngine(model, _WideByteCodec(), SessionStoreConfig(budget_bytes=8 << 30))
    session = engine.session(system_prompt=SYSTEM)
    turn_bytes = 200 if quick else 450
    for message in _messages(4, turn_bytes):
        "".join(session.send(message, max_new_tokens=REPLY_TOKENS))
    history = len(session.tokens)
    reuse, recompute, prompts = [], [], []
    for rep, message in enumerate(_messages(reps + 1, 40, offset=10_000)):
        full = engine.store.tokens(session.id) + session.prompt_ids(message)
        recomputed = _recompute_ttft(model, engine, full)
        "".join(session.send(message, max_new_tokens=1))
        assert session.last_turn is not None
        assert session.last_turn.reused_tokens + session.last_turn.prompt_tokens == len(full)
        if rep:  # the first turn warms up (cuDNN builds its attention plans once: ~0.5 s)
            reuse.append(session.last_turn.first_token_s)
            prompts.append(session.last_turn.prompt_tokens)
            recompute.append(recomputed)
    row: dict[str, Any] = {
        "model": f"{SPEED_MODEL}-shaped" + (" (2 layers)" if quick else ""),
        "device": device,
        "dtype": str(dtype).removeprefix("torch."),
        "history_tokens": history,
        "turn5_prompt_tokens": statistics.median(prompts),
        "ttft_reuse_s": statistics.median(reuse),
        "ttft_recompute_s": statistics.median(recompute),
    }
    row["speedup"] = row["ttft_recompute_s"] / row["ttft_reuse_s"]
    del model, engine
    return row


TIER_CONFIGS: dict[str, dict[str, Any]] = {
    "hot only": {"warm": False},
    "hot + warm int8": {"warm_bits": 8},
    "hot + warm int4": {"warm_bits": 4},
    "hot + warm int4 + cold": {"warm_bits": 4, "cold": True},
}


def tiers(name: str, quick: bool, cap: int) -> dict[str, Any]:
    """How many ~512-token sessions one budget serves under one tier config."""
    model = load_byte_llama(torch.bfloat16)[0]
    session_tokens = 256 if quick else 512
    token_bytes = 4 * 2 * 2 * 64 * 2  # fixture: layers, K and V, KV heads, head dim, bf16
    budget = 8 * session_tokens * token_bytes  # eight sessions, hot
    options = dict(TIER_CONFIGS[name])
    with tempfile.TemporaryDirectory(prefix="memlens-bench-spill-") as spill:
        config = SessionStoreConfig(
            budget_bytes=budget,
            warm=options.get("warm", True),
            warm_bits=options.get("warm_bits", 8),
            spill_dir=Path(spill) if options.get("cold") else None,
        )
        engine = ChatEngine(model, ByteCodec(), config)
        system = (SYSTEM + " " * 64)[:64]  # 64 tokens: four shared blocks
        message_bytes = session_tokens - 64 - len("User: \nAssistant:") - 8
        sessions: list[Session] = []
        refused = None
        for message in _messages(cap, message_bytes):
            try:
                session = engine.session(system_prompt=system)
            except SessionBudgetError as exc:
                refused = str(exc)
                break
            try:
                "".join(session.send(message, max_new_tokens=8))
            except SessionBudgetError as exc:  # the session fits, its first turn does not
                refused = str(exc)
                session.close()
                break
            sessions.append(session)
        at_rest = engine.stats()
        ttft: dict[str, list[float]] = {tier.value: [] for tier in Tier}
        waiting, served = list(sessions), 0
        while waiting:  # a session counts as served once it also takes a follow-up turn
            try:
                "".join(waiting[0].send("and then?", max_new_tokens=1))
            except SessionBudgetError:
                waiting.pop().close()  # no room for its turn: the newest waiting one gives way
                continue
            turn = waiting.pop(0).last_turn
            assert turn is not None
            ttft[turn.tier.value].append(turn.first_token_s)
            served += 1
        after = engine.stats()
    cold = after.cold
    return {
        "config": name,
        "budget_bytes": budget,
        "session_tokens": session_tokens,
        "sessions_created": len(sessions),
        "sessions_served": served,
        "capped": refused is None,
        "refused": refused,
        "in_memory": at_rest.hot.sessions + at_rest.warm.sessions,
        "hot": at_rest.hot.sessions,
        "warm": at_rest.warm.sessions,
        "cold": at_rest.cold.sessions,
        "used_bytes": at_rest.used_bytes,
        "cold_disk_bytes": at_rest.cold.bytes,
        "restore_ms": 1000 * cold.restore_s / cold.restores if cold.restores else None,
        "ttft_ms_by_tier": {
            tier: 1000 * statistics.median(times) for tier, times in ttft.items() if times
        },
        "stats": after.to_json(),
    }


def _goals(turns: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_name = {row["config"]: row for row in rows}
    hot = by_name["hot only"]["sessions_served"]
    tiered = by_name["hot + warm int4 + cold"]
    return {
        "ttft_speedup": {row["device"]: row["speedup"] for row in turns},
        "ttft_reuse_at_least_10x": {row["device"]: row["speedup"] >= 10 for row in turns},
        "sessions_vs_hot_only": {
            name: row["sessions_served"] / hot for name, row in by_name.items() if hot
        },
        "sessions_with_tiers_at_least_4x": tiered["sessions_served"] >= 4 * hot,
        "tiered_row_capped": tiered["capped"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller model and sessions")
    parser.add_argument(
        "--devices",
        default="cuda,cpu" if torch.cuda.is_available() else "cpu",
        help="devices of the multi-turn rows (default: %(default)s)",
    )
    parser.add_argument("--reps", type=int, default=3, help="turn-5 measurements per row")
    parser.add_argument("--cap", type=int, default=64, help="most sessions per tier row")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    console = Console(stderr=True)
    turns: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    results: dict[str, Any] = {"quick": args.quick, "multi_turn": turns, "tiers": rows}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    for device in (d.strip() for d in args.devices.split(",") if d.strip()):
        console.print(f"[bold]multi-turn[/] on {device}")
        turns.append(multi_turn(device, args.quick, args.reps))
        RESULTS.write_text(json.dumps({**results, "partial": True}, indent=2))
    for name in TIER_CONFIGS:
        console.print(f"[bold]tiers[/]: {name}")
        rows.append(tiers(name, args.quick, args.cap))
        RESULTS.write_text(json.dumps({**results, "partial": True}, indent=2))
    results["goals"] = _goals(turns, rows)
    RESULTS.write_text(json.dumps(results, indent=2))
    _print(turns, rows, results["goals"])
    print(f"\nJSON: {RESULTS}")


def _print(turns: list[dict[str, Any]], rows: list[dict[str, Any]], goals: dict[str, Any]) -> None:
    console = Console()
    table = Table(title="Time to first token at turn 5: session reuse vs full recompute")
    for column in ("model", "device", "history", "turn prompt", "reuse", "recompute", "×"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in turns:
        table.add_row(
            f"{row['model']} {row['dtype']}",
            row["device"],
            f"{row['history_tokens']} tok",
            f"{row['turn5_prompt_tokens']:.0f} tok",
            f"{row['ttft_reuse_s'] * 1000:.1f} ms",
            f"{row['ttft_recompute_s'] * 1000:.1f} ms",
            f"{row['speedup']:.1f}",
        )
    console.print(table)
    tiers_table = Table(
        title=f"Sessions one budget serves (byte-level fixture, bf16, "
        f"{rows[0]['session_tokens']}-token sessions, budget "
        f"{format_bytes(rows[0]['budget_bytes'])})"
    )
    columns = ("tiers", "served", "hot/warm/cold", "memory", "disk", "restore", "TTFT by tier")
    for column in columns:
        tiers_table.add_column(column, justify="left" if column == "tiers" else "right")
    for row in rows:
        by_tier = ", ".join(f"{t} {ms:.1f} ms" for t, ms in row["ttft_ms_by_tier"].items())
        tiers_table.add_row(
            row["config"],
            f"{'≥' if row['capped'] else ''}{row['sessions_served']}",
            f"{row['hot']}/{row['warm']}/{row['cold']}",
            format_bytes(row["used_bytes"]),
            format_bytes(row["cold_disk_bytes"]),
            "–" if row["restore_ms"] is None else f"{row['restore_ms']:.2f} ms",
            by_tier,
        )
    console.print(tiers_table)
    for key, value in goals.items():
        console.print(f"{key}: {value}")


if __name__ == "__main__":
    main()
