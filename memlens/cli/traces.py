"""``memlens traces``: recent traces, one trace as a waterfall, or the code-location index."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from memlens.cli.output import emit_json, plain_table, stdout_console
from memlens.errors import UsageError

if TYPE_CHECKING:
    from memlens.tracing.store import TraceStore
    from memlens.tracing.topology import WaterfallRow

NAME = "traces"
HELP = "list recent traces, show one as a waterfall (--trace), or spans per code line (--code)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``memlens traces``."""
    parser.add_argument("--db", type=Path, default=Path(".memlens/traces.db"), help="trace store")
    parser.add_argument("--limit", type=int, default=20, help="traces listed (default: 20)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument(
        "--trace",
        metavar="TRACE_ID",
        help="show this trace as a waterfall (from Jaeger when the store lacks it and"
        " --jaeger-url is given)",
    )
    what.add_argument(
        "--code",
        metavar="PATH",
        nargs="?",
        const="",
        help="spans per code location (count, p50, latest trace), optionally of one file",
    )
    what.add_argument(
        "--report",
        metavar="TRACE_ID",
        nargs="?",
        const="",
        help="print the editor's trace-view JSON (graph, recent traces, optionally one trace);"
        " save it and open it with `memlens: Open trace`",
    )
    parser.add_argument(
        "--jaeger-url", help="Jaeger UI base URL: deep links, and traces the store lacks"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    """Print the table (or JSON) the options ask for."""
    from memlens.tracing import jaeger
    from memlens.tracing.store import TraceStore

    if args.limit <= 0:
        raise UsageError("--limit must be positive")
    base = jaeger.validate_base_url(args.jaeger_url) if args.jaeger_url else None
    with TraceStore(args.db, readonly=True) as store:
        if args.report is not None:
            _report(store, args, base)
        elif args.trace:
            _trace(store, args, base)
        elif args.code is not None:
            _code_locations(store, args)
        else:
            _recent(store, args, base)
    return 0


def _report(store: TraceStore, args: argparse.Namespace, base: str | None) -> None:
    """``--report [TRACE_ID]``: the trace view's JSON."""
    from memlens.tracing.trace_view import trace_report

    trace_id = args.report.strip().lower() or None
    emit_json(trace_report(store, trace_id, limit=args.limit, jaeger_url=base))


def _trace(store: TraceStore, args: argparse.Namespace, base: str | None) -> None:
    """``--trace TRACE_ID``: one trace as a waterfall, from the store or else from Jaeger."""
    from memlens.tracing import jaeger
    from memlens.tracing.topology import waterfall

    trace_id = args.trace.strip().lower()
    spans = store.trace(trace_id)
    if not spans and base:
        spans = jaeger.JaegerClient(base).trace(trace_id)
    if not spans:
        where = f"{args.db} or the Jaeger at {base}" if base else str(args.db)
        raise UsageError(f"no trace {args.trace} in {where}; list them with `memlens traces`")
    rows = waterfall(spans)
    if args.json:
        emit_json(
            {
                "trace_id": trace_id,
                "jaeger_url": jaeger.trace_link(base, trace_id),
                "spans": [dataclasses.asdict(r) for r in rows],
            }
        )
        return
    _print_waterfall(trace_id, rows, base)


def _print_waterfall(trace_id: str, rows: list[WaterfallRow], base: str | None) -> None:

    from memlens.tracing import jaeger

    total = max((r.offset_ms + r.duration_ms for r in rows), default=0.0) or 1.0
    table = plain_table(f"trace {trace_id}", ("span", "service", "offset ms", "ms", "", "code"))
    for r in rows:
        lead = round(r.offset_ms / total * 30)
        bar = " " * lead + "█" * max(1, round(r.duration_ms / total * 30))
        name = "  " * r.depth + r.name + (" (orphan)" if r.orphan else "")
        code = f"{r.code.path}:{r.code.line}" if r.code else ""
        style = "red" if r.error else None
        table.add_row(
            name,
            r.service,
            f"{r.offset_ms:.1f}",
            f"{r.duration_ms:.1f}",
            bar,
            code,
            style=style,
        )
    console = stdout_console()
    console.print(table)
    link = jaeger.trace_link(base, trace_id)
    if link:
        console.print(f"Jaeger: {link}")


def _code_locations(store: TraceStore, args: argparse.Namespace) -> None:
    """``--code [PATH]``: spans per code location, optionally of one file."""

    from memlens.tracing.topology import code_index

    stats = code_index(store, args.code or None)
    if args.json:
        emit_json([dataclasses.asdict(st) for st in stats])
        return
    table = plain_table(
        "spans per code location",
        ("location", "function", "spans", "p50 ms", "p95 ms", "latest trace"),
    )
    for st in stats:
        table.add_row(
            f"{st.location.path}:{st.location.line}",
            st.location.function or "",
            str(st.count),
            f"{st.p50_ms:.1f}",
            f"{st.p95_ms:.1f}",
            st.latest_trace_id,
        )
    stdout_console().print(table)


def _recent(store: TraceStore, args: argparse.Namespace, base: str | None) -> None:
    """No mode option: the most recent traces."""

    from memlens.tracing import jaeger
    from memlens.tracing.topology import recent_traces

    summaries = recent_traces(store, args.limit)
    if args.json:
        emit_json(
            [
                {
                    **dataclasses.asdict(t),
                    "jaeger_url": jaeger.trace_link(base, t.trace_id),
                }
                for t in summaries
            ]
        )
        return
    table = plain_table(
        f"recent traces in {args.db}", ("trace id", "root", "services", "spans", "errors", "ms")
    )
    for t in summaries:
        table.add_row(
            t.trace_id,
            f"{t.root_service}: {t.root_name}",
            ", ".join(t.services),
            str(t.spans),
            str(t.errors),
            f"{t.duration_ms:.1f}",
            style="red" if t.errors else None,
        )
    stdout_console().print(table)
