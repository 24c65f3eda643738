"""``memlens run -- COMMAND …``: run a Python service with tracing switched on.

The command replaces this process (``exec``), so its PID, signals and exit code are the
service's own. Tracing is installed by a ``sitecustomize`` put first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from memlens.errors import UsageError

NAME = "run"
HELP = "run a Python service with OpenTelemetry tracing to the local collector"

DEFAULT_ENDPOINT = "http://127.0.0.1:4318"
_TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
_METRICS_ENDPOINT = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
_log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``memlens run``."""
    parser.add_argument("--service", help="service name (default: OTEL_SERVICE_NAME or the script)")
    parser.add_argument(
        "--endpoint",
        help="OTLP/HTTP base URL (default: OTEL_EXPORTER_OTLP_ENDPOINT or "
        + DEFAULT_ENDPOINT
        + ")",
    )
    parser.add_argument(
        "--no-memory",
        action="store_true",
        help="do not sample memory (no events on server spans, no memory metrics)",
    )
    parser.add_argument(
        "--memory-interval",
        type=float,
        metavar="SECONDS",
        help="seconds between memory metric readings (default: MEMLENS_MEMORY_INTERVAL_S or 1)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS…]")


def service_name(command: Sequence[str]) -> str:
    """The script's stem, the ``-m`` module, or the program's name."""
    for i, arg in enumerate(command[1:], start=1):
        if arg == "-m" and i + 1 < len(command):
            return command[i + 1]
        if arg.endswith(".py"):
            return Path(arg).stem
    return Path(command[0]).name


def child_environment(
    command: Sequence[str],
    environ: dict[str, str],
    service: str | None = None,
    endpoint: str | None = None,
    memory: bool = True,
    memory_interval_s: float | None = None,
) -> dict[str, str]:
    """The environment the traced command runs with."""
    env = dict(environ)
    bootstrap_dir = str(Path(__file__).resolve().parents[1] / "tracing" / "_sitecustomize")
    package_root = str(Path(__file__).resolve().parents[2])
    paths = [
        bootstrap_dir,
        package_root,
        *filter(None, env.get("PYTHONPATH", "").split(os.pathsep)),
    ]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    if service:
        env["OTEL_SERVICE_NAME"] = service
    env.setdefault("OTEL_SERVICE_NAME", service_name(command))
    if endpoint:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
        env.pop(_TRACES_ENDPOINT, None)
        env.pop(_METRICS_ENDPOINT, None)
    elif not (
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = DEFAULT_ENDPOINT
    traces = env.get(_TRACES_ENDPOINT, "")
    if traces.endswith("/v1/traces") and _METRICS_ENDPOINT not in env:
        # memory metrics go where the spans go, not to the SDK's default localhost:4318
        env[_METRICS_ENDPOINT] = traces.removesuffix("/v1/traces") + "/v1/metrics"
    env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf"
    env["MEMLENS_MEMORY"] = "1" if memory else "0"
    if memory_interval_s is not None:
        from memlens.tracing.memory import INTERVAL_ENV

        env[INTERVAL_ENV] = repr(memory_interval_s)
    return env


def _warn_without_collector(env: dict[str, str]) -> None:
    url = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT", ""
    )
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UsageError(f"OTLP endpoint {url!r} is not an http(s) URL")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=0.5):
            pass
    except OSError:
        print(
            f"memlens run: nothing listens on {parsed.hostname}:{port}; spans will be lost "
            "until `memlens collector` runs there",
            file=sys.stderr,
        )


def run(args: argparse.Namespace) -> int:
    """Replace this process with the traced command."""
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise UsageError("nothing to run: memlens run -- python service.py [ARGS…]")
    interval = args.memory_interval
    if interval is not None and not 0 < interval < float("inf"):
        raise UsageError(f"--memory-interval {interval} is not a positive number of seconds")
    env = child_environment(
        command,
        dict(os.environ),
        args.service,
        args.endpoint,
        memory=not args.no_memory,
        memory_interval_s=interval,
    )
    _warn_without_collector(env)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(command[0], command, env)
    except OSError as exc:
        raise UsageError(f"cannot run {command[0]!r}: {exc.strerror}") from exc
    return 0  # not reached
