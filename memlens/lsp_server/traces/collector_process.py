"""The local collector the language server starts when tracing is on and nothing listens
on ``memlens.collector.port``: ``python -m memlens collector`` writing the workspace's
store, its output in ``.memlens/collector.log`` beside it. The server stops what it
started, and never a collector someone else runs; a collector whose server died without
stopping it (``kill -9``, a crash) stops itself (``--parent-pid``)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

from memlens.errors import MemlensError

__all__ = ["CollectorProcess", "CollectorStartError", "port_answers"]

log = logging.getLogger(__name__)
HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0
LOG_TAIL_CHARS = 600


class CollectorStartError(MemlensError):
    """The collector the server started exited or never answered."""


def port_answers(port: int, host: str = HOST, timeout_s: float = 0.2) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


class CollectorProcess:
    """One collector child of the language server."""

    def __init__(self, db: Path, port: int) -> None:
        self.db = db
        self.port = port
        self.log_path = db.parent / "collector.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """Whether the child is alive."""
        return self._process is not None and self._process.poll() is None

    async def start(self) -> None:
        """Start it and wait until it answers; CollectorStartError with its log's tail when
        it exits first or takes longer than ``START_TIMEOUT_S``."""
        self.db.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as output:
            self._process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "memlens", "collector"),
                    *("--db", str(self.db), "--port", str(self.port), "--host", HOST),
                    *("--parent-pid", str(os.getpid())),
                ],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        log.info("started the collector (pid %d) on %s:%d", self._process.pid, HOST, self.port)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while not await asyncio.to_thread(port_answers, self.port):
            if (code := self._process.poll()) is not None or loop.time() > deadline:
                await self.stop()
                why = f"exited with code {code}" if code is not None else "did not answer"
                raise CollectorStartError(
                    f"the memlens collector on port {self.port} {why}: {self._log_tail()}"
                )
            await asyncio.sleep(0.1)

    def _log_tail(self) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip()
        except OSError:
            return f"no log at {self.log_path}"
        return text[-LOG_TAIL_CHARS:] or "(its log is empty)"

    async def stop(self) -> None:
        """Terminate the child (kill it after ``STOP_TIMEOUT_S``)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)
