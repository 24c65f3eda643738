"""How long the garbage collector stops the server: each pass timed through
``gc.callbacks``, the longest kept (``memlens.serverStatus`` reports it)."""

from __future__ import annotations

import gc
import time
from typing import Any


class GcPauses:
    """The longest garbage-collector pass in this process since :meth:`install`."""

    def __init__(self) -> None:
        self.longest_s = 0.0
        """Seconds of the longest pass."""
        self.longest_generation: int | None = None
        """The generation that pass collected (2: a full collection)."""
        self.passes = 0
        self._started: float | None = None

    def install(self) -> None:
        """Start timing (once per process: ``gc.callbacks`` is process-wide)."""
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        if self._started is None:
            return
        took = time.perf_counter() - self._started
        self._started = None
        self.passes += 1
        if took > self.longest_s:
            self.longest_s = took
            self.longest_generation = int(info.get("generation", 0))
