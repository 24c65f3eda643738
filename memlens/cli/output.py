"""What the tracing commands print: JSON documents on stdout, and plain rich tables."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table


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
