"""The server's view of the workspace's trace store (``.memlens/traces.db``).

When tracing is on in a trusted workspace, :class:`TraceWatch` starts the local collector
if nothing listens on the port, then polls the store once a second. New spans or memory
samples call ``on_change`` once they stop arriving for ``DEBOUNCE_S`` (or every
``MAX_DELAY_S`` under steady traffic), so lenses, diagnostics and an open trace view
refresh without a storm of requests. Reads go through short-lived read-only connections in
a worker thread; the collector is the store's only writer.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from memlens.errors import MemlensError
from memlens.lsp_server.traces.collector_process import CollectorProcess, port_answers
from memlens.lsp_server.traces.trace_lenses import CodeDuration
from memlens.tracing.records import MemoryPeak
from memlens.tracing.store import TraceStore

__all__ = ["STORE_PATH", "TraceWatch"]

log = logging.getLogger(__name__)
STORE_PATH = Path(".memlens") / "traces.db"
"""The store, relative to the workspace root (the collector's default too)."""
POLL_S = 1.0
"""Seconds between looks at the store while nothing is pending."""
DEBOUNCE_S = 0.5
"""Seconds of quiet after new data before ``on_change`` is called."""
MAX_DELAY_S = 3.0
"""Most seconds ``on_change`` waits under steady traffic."""
_READ_ERRORS = (MemlensError, sqlite3.Error)
"""What reading the store may raise: a missing or foreign file, or SQLite itself (a file
replaced or locked under the reader); polling logs these and carries on."""


class TraceWatch:
    """Collector, polling and cached reads for one workspace."""

    def __init__(self, on_change: Callable[[], None], on_error: Callable[[str], None]) -> None:
        self._on_change = on_change
        self._on_error = on_error
        self.db: Path | None = None
        self.collector: CollectorProcess | None = None
        self._port: int | None = None
        self.memory_peaks: list[MemoryPeak] = []
        """Per process, its peak and latest RSS; refreshed on every change."""
        self._seen_ns = 0
        self._rows: dict[str, list[CodeDuration]] = {}
        self._task: asyncio.Task[None] | None = None
        self._changing = asyncio.Lock()
        """Serialises configure and stop: a shutdown during a collector's start waits for
        it, then stops it."""

    @property
    def active(self) -> bool:
        """Whether tracing is on for this workspace."""
        return self.db is not None

    async def configure(self, enabled: bool, root: Path | None, port: int) -> None:
        """Follow the settings: start watching (and the collector) or stop."""
        async with self._changing:
            await self._configure(root / STORE_PATH if enabled and root else None, port)

    async def _configure(self, db: Path | None, port: int) -> None:
        unchanged = db == self.db and port == self._port
        if unchanged and (self.collector is None or self.collector.running):
            return
        await self._stop()
        self.db, self._port = db, port
        if db is None:
            return
        if not await asyncio.to_thread(port_answers, port):
            collector = CollectorProcess(db, port)
            try:
                await collector.start()
                self.collector = collector
            except MemlensError as exc:
                self._on_error(str(exc))
        self._task = asyncio.get_running_loop().create_task(self._poll())

    async def stop(self) -> None:
        """Stop polling and the collector this server started."""
        async with self._changing:
            await self._stop()

    async def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self.collector is not None:
            await self.collector.stop()
            self.collector = None
        self.db = self._port = None
        self.memory_peaks = []
        self._rows.clear()
        self._seen_ns = 0

    @contextmanager
    def _store(self) -> Iterator[TraceStore | None]:
        if self.db is None or not self.db.exists():
            yield None
            return
        with TraceStore(self.db, readonly=True) as store:
            yield store

    def _span_paths(self, path: str) -> list[str]:
        """The ways a span may name the editor's file ``path``: as given, resolved
        (symlinks, ``..``; ``memlens run`` records this form), and relative to the workspace
        root (instrumentation that keeps ``co_filename`` as given, run from the root)."""
        forms = [path, str(Path(path).resolve())]
        if self.db is not None:
            root = self.db.parent.parent.resolve()  # db is root/.memlens/traces.db
            if Path(forms[1]).is_relative_to(root):
                forms.append(str(Path(forms[1]).relative_to(root)))
        return list(dict.fromkeys(forms))

    def code_rows(self, path: str) -> list[CodeDuration]:
        """The located spans of one file (cached until the store changes); none while the
        store cannot be read."""
        cached = self._rows.get(path)
        if cached is None:
            try:
                with self._store() as store:
                    cached = (
                        [r for p in self._span_paths(path) for r in store.code_durations(p)]
                        if store
                        else []
                    )
            except _READ_ERRORS as exc:
                log.warning("cannot read the trace store: %s", exc)
                return []
            self._rows[path] = cached
        return cached

    def report_store(self) -> TraceStore | None:
        """A read-only connection for a report; the caller closes it."""
        if self.db is None or not self.db.exists():
            return None
        return TraceStore(self.db, readonly=True)

    def _latest(self) -> int:
        with self._store() as store:
            return store.latest_received_ns() if store else 0

    def _peaks(self) -> list[MemoryPeak]:
        with self._store() as store:
            return store.memory_peaks() if store else []

    async def _poll(self) -> None:
        pending_since: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(POLL_S if pending_since is None else DEBOUNCE_S)
            try:
                latest = await asyncio.to_thread(self._latest)
                grew = latest > self._seen_ns
                self._seen_ns = max(latest, self._seen_ns)
                if grew and pending_since is None:
                    pending_since = loop.time()
                quiet = not grew or loop.time() - (pending_since or 0) >= MAX_DELAY_S
                if pending_since is None or not quiet:
                    continue
                # assigned here, not in the thread: a stop during the read cancels this
                # task at the await, so a stopped watch never gets the old store's peaks
                peaks = await asyncio.to_thread(self._peaks)
            except _READ_ERRORS as exc:
                log.warning("cannot read the trace store: %s", exc)
                continue
            pending_since = None
            self._rows.clear()
            self.memory_peaks = peaks
            self._on_change()
