"""``memlens`` entry point: builds the parser from the subcommand modules and maps
MemlensError subclasses to one line on stderr and their exit codes.

Exit codes: 0 success; 1 other memlens error; 2 bad usage; 3 model not found; 4 corrupt
or inconsistent config; 5 unsupported architecture; 6 missing dependency; 7 a chat
session does not fit its memory budget; 8 a session could not be spilled to or restored
from disk; 9 a session was closed or lost (corrupt spill file); 130 interrupted. Each
code is the ``exit_code`` of a class in ``memlens/errors.py``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from memlens import __version__
from memlens.cli import (
    bench,
    chat,
    collector,
    compress,
    estimate,
    generate,
    lsp,
    profile,
    run,
    topology,
    traces,
    train,
)
from memlens.errors import MemlensError

SUBCOMMANDS: tuple[ModuleType, ...] = (
    estimate,
    profile,
    compress,
    train,
    generate,
    chat,
    bench,
    lsp,
    collector,
    run,
    traces,
    topology,
)
"""Each module exposes ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args)``."""

EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per subcommand module."""
    parser = argparse.ArgumentParser(
        prog="memlens",
        description="Memory estimates, compressed inference and local tracing for LLM code.",
    )
    parser.add_argument("--version", action="version", version=f"memlens {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        sub = commands.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def _own_records(record: logging.LogRecord) -> bool:
    """Whether a log record is memlens's own (libraries that transformers imports, e.g.
    torchao's missing CUDA extensions or Triton, log warnings a user cannot act on)."""
    return record.name == "memlens" or record.name.startswith("memlens.")


def _configure_logging(verbose: bool) -> None:
    """memlens's warnings on stderr; other libraries' log records and Python warnings
    only with ``--verbose``. Where logging is configured already (a host program, pytest),
    it is left as it is."""
    if not verbose:  # torch logs through its own handlers: only errors (TORCH_LOGS syntax)
        os.environ.setdefault("TORCH_LOGS", "-all")
    root = logging.getLogger()
    before = list(root.handlers)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="memlens: %(levelname)s: %(message)s",
    )
    added = [handler for handler in root.handlers if handler not in before]
    if added:
        logging.captureWarnings(True)  # warnings.warn → the "py.warnings" logger
    if not verbose:
        for handler in added:
            handler.addFilter(_own_records)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        code: int = args.run(args)
    except MemlensError as exc:
        print(f"memlens: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("memlens: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
