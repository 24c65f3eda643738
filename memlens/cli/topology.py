"""``memlens topology``: the service graph (calls, errors, p50/p95) over a recent window."""

from __future__ import annotations

import argparse
import dataclasses
import re
import time
from pathlib import Path

from memlens.cli.output import emit_json, plain_table, stdout_console
from memlens.errors import UsageError

NAME = "topology"
HELP = "service graph over a time window: who calls whom, how often, errors, p50/p95"

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_window(text: str) -> float:
    """``90s``, ``15m``, ``2h``, ``1d`` → seconds; UsageError otherwise."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if match is None or float(match[1]) <= 0:
        raise UsageError(f"--since {text!r}: use a positive number and s, m, h or d, e.g. 15m")
    return float(match[1]) * _UNITS[match[2]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``memlens topology``."""
    parser.add_argument("--db", type=Path, default=Path(".memlens/traces.db"), help="trace store")
    parser.add_argument("--since", default="1h", help="window ending now (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    """Print the service edges of spans that started within the window."""

    from memlens.tracing.store import TraceStore
    from memlens.tracing.topology import service_graph

    seconds = parse_window(args.since)
    end = time.time_ns()
    with TraceStore(args.db, readonly=True) as store:
        edges = service_graph(store.spans_between(end - int(seconds * 1e9), end + 1))
    if args.json:
        emit_json([dataclasses.asdict(e) for e in edges])
        return 0
    table = plain_table(
        f"service calls in the last {args.since}",
        ("caller", "callee", "calls", "errors", "p50 ms", "p95 ms"),
    )
    for e in edges:
        table.add_row(
            e.caller,
            e.callee,
            str(e.calls),
            str(e.errors),
            f"{e.p50_ms:.1f}",
            f"{e.p95_ms:.1f}",
            style="red" if e.errors else None,
        )
    stdout_console().print(table)
    return 0
