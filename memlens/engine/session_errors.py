"""The session store's errors, re-exported from :mod:`memlens.errors` where every
``MemlensError`` and its exit code is defined (``memlens.engine`` still imports them from
here)."""

from __future__ import annotations

from memlens.errors import SessionBudgetError, SessionLostError, SpillError

__all__ = ["SessionBudgetError", "SessionLostError", "SpillError"]
