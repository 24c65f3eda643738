"""Exit with the process that started us: a thread that notices when a given process is
gone (killed, crashed, exited) and says so once.

The language server starts the collector with ``--parent-pid``; a server that dies without
stopping it (``kill -9``, a crash) must not leave it behind, listening on the port the next
server would then take for a collector of its own.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import psutil

from memlens.errors import UsageError

__all__ = ["POLL_S", "watch_parent"]

_log = logging.getLogger(__name__)

POLL_S = 0.5
"""Seconds between two looks at the parent."""


def _gone(parent: psutil.Process, was_our_parent: bool) -> bool:
    if was_our_parent and os.getppid() != parent.pid:
        return True  # reparented: on POSIX this happens the moment the parent dies
    try:
        # a killed process stays a zombie until its own parent reaps it
        return not parent.is_running() or parent.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def watch_parent(pid: int, on_gone: Callable[[], None], poll_s: float = POLL_S) -> None:
    """Call ``on_gone`` (once, from a daemon thread) when process ``pid`` is gone.

    Raises UsageError when there is no process ``pid`` to begin with. Process ids are not
    reused unnoticed: the process is identified by its id and start time."""
    try:
        parent = psutil.Process(pid)
    except psutil.Error as exc:
        raise UsageError(f"--parent-pid {pid}: no such process ({exc})") from exc
    was_our_parent = os.getppid() == pid

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if _gone(parent, was_our_parent):
                _log.warning("process %d, which started this one, is gone; stopping", pid)
                on_gone()
                return

    threading.Thread(target=watch, name="memlens-parent-watch", daemon=True).start()
