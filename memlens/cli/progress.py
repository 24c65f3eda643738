"""A progress bar on stderr for long engine work (stdout stays clean for ``--json``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


@contextlib.contextmanager
def progress_bar(title: str) -> Iterator[Callable[[str, float], None]]:
    """Yield ``update(message, percent)`` drawing one bar titled ``title``."""
    with Progress(
        TextColumn("[bold]{task.fields[title]}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("", total=100, title=title)

        def update(message: str, percent: float) -> None:
            bar.update(task, completed=percent, description=message)

        yield update
