"""The language server's side of the worker: start it, send requests, survive its death.

A crash (OOM kill, segfault, ``kill -9``) fails the requests in flight with
WorkerCrashed, tells the server through ``on_crash``, and the next request starts a new
worker; the server itself never goes down with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from memlens.errors import MemlensError

log = logging.getLogger(__name__)
ProgressCallback = Callable[[dict[str, Any]], None]
_STREAM_LIMIT = 64 * 1024 * 1024  # one estimate of an 80-layer model is a long line
CANCEL_GRACE_S = 5.0


class WorkerError(MemlensError):
    """The worker answered with an error."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class WorkerCrashed(MemlensError):
    """The worker process died while requests were in flight."""


class WorkerTimeout(MemlensError):
    """A worker request ran past its time limit and was cancelled."""


@dataclass(frozen=True)
class _Pending:
    """A request in flight, tied to the worker process it was sent to."""

    future: asyncio.Future[Any]
    on_progress: ProgressCallback | None
    process: asyncio.subprocess.Process


class WorkerClient:
    """Owns one ``python -m memlens.worker`` process at a time."""

    def __init__(
        self, on_crash: Callable[[str], None] | None = None, command: list[str] | None = None
    ) -> None:
        self.command = command or [sys.executable, "-m", "memlens.worker"]
        self.on_crash = on_crash
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count(1)
        self._start_lock = asyncio.Lock()
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        """The current worker's pid, if one runs."""
        return self._process.pid if self._process and self._process.returncode is None else None

    async def _ensure_started(self) -> asyncio.subprocess.Process:
        async with self._start_lock:
            if self._process is None or self._process.returncode is not None:
                if self._process is not None:
                    self.restarts += 1
                try:
                    self._process = await asyncio.create_subprocess_exec(
                        *self.command,
                        stdin=asyncio.subprocess.PIPE,
                        stdout=asyncio.subprocess.PIPE,
                        env={**os.environ},
                        limit=_STREAM_LIMIT,
                    )
                except OSError as exc:
                    raise WorkerCrashed(f"cannot start the memlens worker: {exc}") from exc
                self._reader = asyncio.create_task(self._read(self._process))
            return self._process

    def _dispatch(self, process: asyncio.subprocess.Process, line: bytes) -> None:
        """Route one reply line; anything malformed is logged and dropped."""
        try:
            message = json.loads(line)
            entry = self._pending.get(message["id"]) if isinstance(message, dict) else None
        except (ValueError, KeyError, TypeError):
            log.warning("worker wrote a line that is not a reply: %r", line[:200])
            return
        if entry is None or entry.process is not process:
            return
        if "progress" in message:
            if entry.on_progress is not None and isinstance(message["progress"], dict):
                try:
                    entry.on_progress(message["progress"])
                except Exception:  # a progress consumer's bug must not stop the reader
                    log.exception("progress callback failed")
        elif not entry.future.done():
            error = message.get("error")
            if isinstance(error, dict):
                entry.future.set_exception(
                    WorkerError(str(error.get("kind", "Error")), str(error.get("message", error)))
                )
            else:
                entry.future.set_result(message.get("result"))

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        try:
            while line := await process.stdout.readline():
                self._dispatch(process, line)
        except (ValueError, asyncio.LimitOverrunError):  # a reply beyond the line limit
            log.warning("worker reply exceeded %d bytes; restarting the worker", _STREAM_LIMIT)
            process.kill()
        code = await process.wait()
        reason = (
            f"the memlens worker exited (code {code}) while working; it restarts on "
            "the next request"
        )
        crashed = [
            e.future for e in self._pending.values() if e.process is process and not e.future.done()
        ]
        for future in crashed:
            future.set_exception(WorkerCrashed(reason))
        if crashed and self.on_crash is not None:
            self.on_crash(reason)

    async def _send(self, message: dict[str, Any]) -> asyncio.subprocess.Process:
        process = await self._ensure_started()
        assert process.stdin is not None
        process.stdin.write((json.dumps(message) + "\n").encode())
        with contextlib.suppress(ConnectionError):
            await process.stdin.drain()
        return process

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send one request and wait for its result.

        Cancelling the awaiting task cancels the request in the worker; a timeout cancels it
        and raises WorkerTimeout (the worker is restarted if it does not stop within a grace
        period); a worker death raises WorkerCrashed.
        """
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        process = await self._ensure_started()
        self._pending[request_id] = _Pending(future, on_progress, process)
        try:
            await self._send({"id": request_id, "method": method, "params": params or {}})
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            await self.cancel(request_id)
            try:
                await asyncio.wait_for(asyncio.shield(future), CANCEL_GRACE_S)
            except (TimeoutError, MemlensError):
                if not future.done():
                    process.kill()  # stuck in native code: only a restart frees it
            raise WorkerTimeout(
                f"{method} took longer than {timeout:g} s and was cancelled"
            ) from None
        except asyncio.CancelledError:
            await self.cancel(request_id)
            raise
        finally:
            self._pending.pop(request_id, None)

    async def cancel(self, request_id: int) -> None:
        """Ask the worker to stop request ``request_id``."""
        if self.pid is not None:
            await self._send({"method": "$/cancel", "params": {"id": request_id}})

    async def stop(self) -> None:
        """Close the worker's stdin and wait for it (kill after 5 s)."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            process.kill()
            await process.wait()
