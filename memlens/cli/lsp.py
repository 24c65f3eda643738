"""``memlens lsp``: run the language server (stdio by default, ``--tcp PORT`` to debug)."""

from __future__ import annotations

import argparse

NAME = "lsp"
HELP = "run the memlens language server (what the VS Code extension starts)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``memlens lsp``."""
    parser.add_argument("--tcp", type=int, metavar="PORT", help="serve on 127.0.0.1:PORT")
    parser.add_argument("--log-level", default="WARNING", help="logging level on stderr")


def run(args: argparse.Namespace) -> int:
    """Serve until the client disconnects."""
    from memlens.lsp_server.__main__ import start_server

    start_server([*(["--tcp", str(args.tcp)] if args.tcp else []), "--log-level", args.log_level])
    return 0
