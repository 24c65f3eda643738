"""``memlens chat DIR``: an interactive multi-turn chat that keeps each conversation's KV
cache between turns (hot/warm/cold session store, see ``memlens/engine/sessions/chat.py``).

Reads one message per line from stdin (a terminal or a pipe) and streams each reply;
blank lines are skipped. Commands: ``/stats`` prints the session store's figures per tier,
``/reset`` starts a new conversation with the same system prompt, ``/quit`` (or end of
input) ends; any other one-word ``/name`` is refused as an unknown command. ``--json``
prints one JSON object per line instead of text: one per turn (``{"turn", "user",
"reply", ...}`` with the turn's figures, or ``{"turn", "user", "error", "exit_code"}``
when it failed), one per ``/stats`` (``{"stats": ...}``) and per ``/reset``
(``{"reset": SESSION_ID}``).

A failed turn is reported and the conversation goes on; the command then exits with the
code of the last failure (0 when none failed), 130 on Ctrl+C.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memlens.cli.generate import add_sampling_arguments, sampling
from memlens.errors import MemlensError, UsageError
from memlens.units import format_bytes, parse_size

if TYPE_CHECKING:
    from memlens.engine.decoding import Sampling
    from memlens.engine.sessions.chat import ChatEngine, Session
    from memlens.engine.sessions.store import StoreStats

NAME = "chat"
HELP = "chat with a local model; sessions keep their KV cache between turns"

_COMMAND = re.compile(r"/[a-z]+")
"""A line that is one ``/word`` is a command, not a message (``/usr/bin/env?`` is not)."""
_COMMANDS = ("/stats", "/reset", "/quit")


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
    add_sampling_arguments(parser)
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per turn, /stats and /reset"
    )


def run(args: argparse.Namespace) -> int:
    """Load the model, then answer stdin line by line until EOF or ``/quit``."""
    from memlens.engine.sessions.chat import ChatEngine
    from memlens.engine.sessions.config import SessionStoreConfig
    from memlens.engine.weights.config import AutoWeightConfig, parse_weights

    if args.max_new_tokens < 1:
        raise UsageError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    weights = parse_weights(args.weights) if args.weights else None
    if isinstance(weights, AutoWeightConfig):
        raise UsageError("--weights auto needs calibration: run `memlens compress` first")
    budget = parse_size(args.budget, "--budget")
    chosen = sampling(args)
    with tempfile.TemporaryDirectory(prefix="memlens-spill-") as scratch:
        store = SessionStoreConfig(
            budget_bytes=budget,
            warm_bits=args.warm_bits,
            spill_dir=args.spill_dir or Path(scratch),
        )
        engine = ChatEngine.load(args.model, weights=weights, store=store)
        chat = _Chat(engine, args, chosen)
        try:
            return chat.run()
        finally:  # also on Ctrl+C: no spill file is left in --spill-dir
            chat.session.close()


class _Chat:
    """One ``memlens chat`` conversation: reads lines, answers them, remembers the exit
    code of the last failure."""

    def __init__(
        self, engine: ChatEngine, args: argparse.Namespace, chosen: Sampling | None
    ) -> None:
        self.engine = engine
        self.args = args
        self.sampling = chosen
        self.session: Session = engine.session(system_prompt=args.system)
        self.turns = 0
        """Messages sent so far (failed ones included)."""

    def run(self) -> int:
        """Answer stdin until EOF or ``/quit``; the exit code of the last failure or 0."""
        code = 0
        while (line := _read_line()) is not None:
            text = line.strip()
            if text == "/quit":
                break
            try:
                if _COMMAND.fullmatch(text):
                    self.command(text)
                elif text:
                    self.turn(line)
            except MemlensError as exc:  # one failed turn does not end the conversation
                print(f"memlens: error: {exc}", file=sys.stderr)
                code = exc.exit_code
        return code

    def command(self, text: str) -> None:
        """Run ``/stats`` or ``/reset``; UsageError for any other command."""
        if text == "/stats":
            _show_stats(self.engine.stats(), self.args.json)
        elif text == "/reset":
            self.session.close()
            self.session = self.engine.session(system_prompt=self.args.system)
            if self.args.json:
                _emit({"reset": self.session.id})
            else:
                print("memlens: new conversation", file=sys.stderr)
        else:
            raise UsageError(f"unknown command {text}: use {', '.join(_COMMANDS)}")

    def turn(self, text: str) -> None:
        """Send one message and show the reply (a JSON record with ``--json``)."""
        self.turns += 1
        record: dict[str, Any] = {"turn": self.turns, "user": text}
        try:
            pieces = self.session.send(text, self.args.max_new_tokens, self.sampling)
            reply = _show_reply(pieces, self.args.json)
        except MemlensError as exc:
            if self.args.json:
                _emit({**record, "error": str(exc), "exit_code": exc.exit_code})
            raise
        if self.args.json and self.session.last_turn is not None:
            _emit({**record, "reply": reply, **self.session.last_turn.to_json()})


def _read_line() -> str | None:
    """The next message, prompting on a terminal; None at end of input."""
    if sys.stdin.isatty():
        sys.stderr.write("> ")
        sys.stderr.flush()
    line = sys.stdin.readline()
    return line.rstrip("\r\n") if line else None


def _show_reply(pieces: Iterator[str], as_json: bool) -> str:
    """Stream the reply to stdout (unless printing JSON); returns its text."""
    shown: list[str] = []
    done = False
    try:
        for piece in pieces:
            shown.append(piece)
            if not as_json:
                sys.stdout.write(piece)
                sys.stdout.flush()
        done = True
    finally:  # a reply cut short by an error or Ctrl+C still ends its line
        if not as_json and (done or shown):
            sys.stdout.write("\n")
            sys.stdout.flush()
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
