"""What the commands print on stdout: JSON documents, plain rich tables, and the console
that prints tables readably whether stdout is a terminal or a pipe."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

PIPE_WIDTH = 200
"""Columns of a table printed when stdout is not a terminal: rich would assume 80 there and
cut every column of a wide table to a few characters."""


def emit_json(payload: Any) -> None:
    """``payload`` as indented JSON on stdout, with a final newline."""
    json.dump(payload, sys.stdout, indent=2)
    sys.stdout.write("\n")


def plain_table(title: str, columns: Iterable[str]) -> Table:
    """A borderless table titled ``title`` with one left-aligned column per name."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE)
    for column in columns:
        table.add_column(column)
    return table


def stdout_console() -> Console:
    """The console for stdout: the terminal's width on a terminal, :data:`PIPE_WIDTH` off one."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=PIPE_WIDTH)
