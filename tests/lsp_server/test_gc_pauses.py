"""Timing the garbage collector (memlens/lsp_server/gc_pauses.py)."""

from __future__ import annotations

import gc

from memlens.lsp_server.gc_pauses import GcPauses


def test_a_full_collection_is_timed() -> None:
    pauses = GcPauses()
    pauses.install()
    pauses.install()  # once per process, however often asked
    try:
        assert gc.callbacks.count(pauses._on_gc) == 1
        gc.collect()
        assert pauses.passes >= 1
        assert pauses.longest_s > 0
        assert pauses.longest_generation == 2
    finally:
        gc.callbacks.remove(pauses._on_gc)
