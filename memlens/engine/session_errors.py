"""Errors of the session store that a user can cause or has to act on.

They live beside the sessions rather than in ``memlens/errors.py`` because only the
session store raises them; each is a :class:`~memlens.errors.MemlensError` with a message
that says what to do.
"""

from __future__ import annotations

from memlens.errors import MemlensError


class SessionBudgetError(MemlensError):
    """A session does not fit the memory budget, alone or beside the sessions that cannot
    be moved out of memory (exit code 7)."""

    exit_code = 7


class SpillError(MemlensError):
    """A session could not be written to or read back from the cold tier (exit code 8)."""

    exit_code = 8


class SessionLostError(MemlensError):
    """The session was closed, or its spill file was found corrupt (exit code 9)."""

    exit_code = 9
