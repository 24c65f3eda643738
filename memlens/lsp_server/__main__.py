"""``python -m memlens.lsp_server [--tcp PORT]``: run the language server (stdio default)."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from typing import TYPE_CHECKING

from memlens.lsp_server.attrs_code_cache import cached_attrs_methods

if TYPE_CHECKING:
    from memlens.lsp_server.server import MemlensServer


def create_server() -> MemlensServer:
    """A server with every feature registered (pygls and the LSP types are imported here,
    with attrs's generated methods from the code cache)."""
    with cached_attrs_methods():
        from memlens.lsp_server.features import register_all
        from memlens.lsp_server.server import MemlensServer

        server = MemlensServer()
        register_all(server)
    return server


class DemoteRoutineWarnings(logging.Filter):
    """pygls warns when a client cancels a request it already answered, which editors do
    on every keystroke ("Cancel notification for unknown message id"): debug, not warning."""

    ROUTINE = ("Cancel notification for unknown message id",)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and str(record.msg).startswith(self.ROUTINE):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return record.levelno >= logging.getLogger().getEffectiveLevel()


def start_server(argv: list[str] | None = None) -> None:
    """Parse options and serve over stdio or TCP."""
    parser = argparse.ArgumentParser(prog="python -m memlens.lsp_server")
    parser.add_argument("--tcp", type=int, metavar="PORT", help="serve on 127.0.0.1:PORT")
    parser.add_argument("--log-level", default="WARNING", help="logging level (stderr)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="memlens-lsp: %(levelname)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        # on the handler: a logger's filter runs after that logger's level check
        handler.addFilter(DemoteRoutineWarnings())
    server = create_server()
    # What start-up made (the LSP types, pygls, memlens's tables) lives as long as the
    # process: the collector's full passes need not walk it again and again.
    gc.freeze()
    server.gc_pauses.install()
    server.gc_policy.install()
    if args.tcp:
        server.start_tcp("127.0.0.1", args.tcp)
    else:
        server.start_io()


if __name__ == "__main__":
    start_server()
