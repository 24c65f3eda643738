"""``memlens chat DIR``: an interactive multi-turn chat that keeps each conversation's KV
cache between turns (hot/warm/cold session store, see ``memlens/engine/sessions.py``).

Reads one message per line from stdin (a terminal or a pipe) and streams each reply.
Commands: ``/stats`` prints the session store's figures per tier, ``/reset`` starts a new
conversation with the same system prompt, ``/quit`` ends. ``--json`` prints one JSON
object per turn (and per ``/stats``) instead of text.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memlens.cli.generate import sampling
from memlens.errors import MemlensError, UsageError
from memlens.units import format_bytes, parse_size

if TYPE_CHECKING:
    from memlens.engine.session_store import StoreStats

NAME = "chat"
HELP = "chat with a local model; sessions keep their KV cache between turns"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``memlens chat``."""
    parser.add_argument("model", metavar="DIR", help="model folder or compressed checkpoint")
    parser.add_argument("--system", help="system prompt that opens the conversation")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="(default: %(default)s)")
    parser.add_argument(
        "--budget", default="512MiB", help="memory for sessions' KV caches (default: %(default)s)"
    )
    parser.add_argument(
        "--warm-bits", type=int, choices=(8, 4), default=8, help="warm tier INT8 or INT4"
    )
    parser.add_argument(
        "--spill-dir", type=Path, help="cold tier folder (default: a temporary folder)"
    )
    parser.add_argument("--weights", help="compress weights first: int8, int4[:g64], lowrank")
    parser.add_argument(
        "--temperature", type=float, help="sample at this temperature (default: greedy)"
    )
    parser.add_argument("--top-k", type=int, help="sample among the k most likely tokens")
    parser.add_argument("--top-p", type=float, help="sample from the nucleus of mass p")
    parser.add_argument("--seed", type=int, help="seed for reproducible samples")
    parser.add_argument("--json", action="store_true", help="one JSON object per turn")


def run(args: argparse.Namespace) -> int:
    """Load the model, then answer stdin line by line until EOF or ``/quit``."""
    from memlens.engine.config import AutoWeightConfig, parse_weights
    from memlens.engine.session_config import SessionStoreConfig
    from memlens.engine.sessions import Engine

    if args.max_new_tokens < 1:
        raise UsageError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    weights = parse_weights(args.weights) if args.weights else None
    if isinstance(weights, AutoWeightConfig):
        raise UsageError("--weights auto needs calibration: run `memlens compress` first")
    chosen = sampling(args)
    with tempfile.TemporaryDirectory(prefix="memlens-spill-") as scratch:
        store = SessionStoreConfig(
            budget_bytes=parse_size(args.budget, "--budget"),
            warm_bits=args.warm_bits,
            spill_dir=args.spill_dir or Path(scratch),
        )
        engine = Engine.load(args.model, weights=weights, store=store)
        session = engine.session(system_prompt=args.system)
        turn, code = 0, 0
        while (text := _read_line()) is not None and text != "/quit":
            try:
                if text == "/stats":
                    _show_stats(engine.stats(), args.json)
                elif text == "/reset":
                    session.close()
                    session = engine.session(system_prompt=args.system)
                elif text.strip():
                    turn += 1
                    reply = _show_reply(session.send(text, args.max_new_tokens, chosen), args.json)
                    if args.json and session.last_turn:
                        record = {"turn": turn, "user": text, "reply": reply}
                        _emit({**record, **session.last_turn.to_json()})
            except MemlensError as exc:  # one failed turn does not end the conversation
                print(f"memlens: error: {exc}", file=sys.stderr)
                code = exc.exit_code
        session.close()
    return code


def _read_line() -> str | None:
    """The next message, prompting on a terminal; None at end of input."""
    if sys.stdin.isatty():
        sys.stderr.write("> ")
        sys.stderr.flush()
    line = sys.stdin.readline()
    return line.rstrip("\n") if line else None


def _show_reply(pieces: Iterator[str], as_json: bool) -> str:
    """Stream the reply to stdout (unless printing JSON); returns its text."""
    shown: list[str] = []
    for piece in pieces:
        shown.append(piece)
        if not as_json:
            sys.stdout.write(piece)
            sys.stdout.flush()
    if not as_json:
        sys.stdout.write("\n")
    return "".join(shown)


def _emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def _show_stats(stats: StoreStats, as_json: bool) -> None:
    if as_json:
        _emit({"stats": stats.to_json()})
        return
    lines = [
        f"budget {format_bytes(stats.budget_bytes)} · used {format_bytes(stats.used_bytes)} · "
        f"shared prefix {stats.shared_blocks} blocks, {format_bytes(stats.shared_bytes)}"
    ]
    for name in ("hot", "warm", "cold"):
        tier = getattr(stats, name)
        lines.append(
            f"{name}: {tier.sessions} sessions · {format_bytes(tier.bytes)} · {tier.hits} hits "
            f"· {tier.promotions} promotions · {tier.demotions} demotions · {tier.spills} "
            f"spills · {tier.restores} restores in {tier.restore_s * 1000:.1f} ms"
        )
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
