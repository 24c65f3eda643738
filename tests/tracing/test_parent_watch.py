"""memlens.tracing.parent_watch: a real process killed, a zombie not yet reaped, and a
process id that names nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import pytest

from memlens.errors import UsageError
from memlens.tracing.parent_watch import watch_parent


def test_a_killed_process_is_noticed_even_before_it_is_reaped() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    gone = threading.Event()
    try:
        watch_parent(child.pid, gone.set, poll_s=0.05)
        assert not gone.wait(0.3)  # alive: not reported
        child.send_signal(signal.SIGKILL)
        assert gone.wait(10)  # a zombie until reaped below: still gone
    finally:
        child.kill()
        child.wait()


def test_no_such_process_is_a_usage_error() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its id names nothing now
    with pytest.raises(UsageError, match=f"--parent-pid {child.pid}: no such process"):
        watch_parent(child.pid, lambda: None)
