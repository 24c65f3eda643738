"""``memlens collector``: receive OTLP/HTTP spans on loopback into the workspace trace store."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from memlens.errors import UsageError

NAME = "collector"
HELP = (
    "receive OTLP/HTTP traces (POST /v1/traces) and memory metrics (POST /v1/metrics) "
    "into the local trace store"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``memlens collector``."""
    parser.add_argument("--db", type=Path, default=Path(".memlens/traces.db"), help="trace store")
    parser.add_argument("--host", default="127.0.0.1", help="interface (default: %(default)s)")
    parser.add_argument("--port", type=int, default=4318, help="port, 0 for any free one")
    parser.add_argument(
        "--max-body-bytes", type=int, default=8 * 1024 * 1024, help="413 above this size"
    )
    parser.add_argument("--max-age-hours", type=float, default=168.0, help="span retention age")
    parser.add_argument("--max-spans", type=int, default=1_000_000, help="spans kept at most")
    parser.add_argument(
        "--max-samples", type=int, default=1_000_000, help="memory samples kept at most"
    )
    parser.add_argument(
        "--retention-every", type=float, default=60.0, help="seconds between retention runs"
    )
    parser.add_argument(
        "--forward",
        metavar="URL",
        help="also send traces and metrics to this OTLP/HTTP endpoint (base or /v1/traces URL)",
    )
    parser.add_argument("--forward-retries", type=int, default=5, help="tries per request")
    parser.add_argument(
        "--parent-pid",
        type=int,
        metavar="PID",
        help="stop (storing what was acknowledged) when process PID is gone",
    )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM (or ``--parent-pid``'s process is gone); prints
    ``listening on URL`` once the port is bound."""
    from memlens.tracing.collector import Collector, CollectorConfig
    from memlens.tracing.parent_watch import watch_parent

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a TCP port (0-65535)")
    if min(args.max_body_bytes, args.max_spans, args.max_samples, args.max_age_hours) <= 0:
        raise UsageError(
            "--max-body-bytes, --max-spans, --max-samples and --max-age-hours must be positive"
        )
    if args.retention_every < 0:
        raise UsageError("--retention-every must not be negative")
    if args.forward and not args.forward.startswith(("http://", "https://")):
        raise UsageError(f"--forward {args.forward!r} is not an http(s) URL")
    config = CollectorConfig(
        db_path=args.db,
        host=args.host,
        port=args.port,
        max_body_bytes=args.max_body_bytes,
        retention_max_age_s=args.max_age_hours * 3600,
        retention_max_spans=args.max_spans,
        retention_max_samples=args.max_samples,
        retention_every_s=args.retention_every,
        forward_url=args.forward,
        forward_retries=args.forward_retries,
    )
    stop = threading.Event()
    if args.parent_pid is not None:
        watch_parent(args.parent_pid, stop.set)
    try:
        collector = Collector(config)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {args.host}:{args.port} ({exc.strerror}); "
            "is another collector running? pass --port"
        ) from exc

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    collector.start()
    print(f"listening on http://{args.host}:{collector.port}/v1/traces", flush=True)
    print(f"storing spans in {args.db}", file=sys.stderr, flush=True)
    stop.wait()
    collector.stop()
    return 0
