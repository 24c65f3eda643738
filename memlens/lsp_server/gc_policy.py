"""When the garbage collector may stop the server: never in the middle of an analysis,
and never again over what an analysis leaves alive.

A full collection walks every object the collector tracks, and a parsed tree is tens of
thousands of them: with the trees of open documents and of followed workspace modules
alive, each full pass took over 100 ms. So an analysis starts with one collection (a
short one: it walks only what was made since the last freeze, and leaves no garbage to be
frozen), runs with the collector off (it makes no reference cycles: the evaluator is
closed before it returns, and what it drops is freed by reference counting), and what is
alive after it is moved out of the collector's view (``gc.freeze``): later passes walk
only what was made since. Frozen objects are still freed when their last reference goes;
only a reference cycle alive at a freeze and dropped later is kept (none of the
analysis's own).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


class GcPolicy:
    """Whether :meth:`analysis` pauses the collector (on in the server process:
    ``python -m memlens.lsp_server``; off where the server runs inside another program,
    such as the tests, whose collector it should not touch)."""

    def __init__(self) -> None:
        self.active = False

    def install(self) -> None:
        """Pause the collector during analyses from now on."""
        self.active = True

    @contextmanager
    def analysis(self) -> Iterator[None]:
        """Around one analysis: a collection first, the collector off inside (if it was
        on), and what is alive when the outermost analysis ends frozen."""
        if not self.active or not gc.isenabled():
            yield
            return
        gc.collect()
        gc.disable()
        try:
            yield
        finally:
            gc.freeze()
            gc.enable()
