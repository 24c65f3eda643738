"""The one error root of memlens.

Every error a user can cause is a :class:`MemlensError` subclass whose message says what
went wrong and what to do about it. The CLI maps each class to its ``exit_code`` in one
place (``memlens.cli.main``); later the language server turns them into diagnostics and
the collector into HTTP status codes.
"""

from __future__ import annotations


class MemlensError(Exception):
    """Base class for errors a user can cause; the message is shown to them as is."""

    exit_code: int = 1
    """Process exit code the CLI uses for this error class."""


class UsageError(MemlensError):
    """A command-line argument or option value is invalid (exit code 2)."""

    exit_code = 2


class ModelNotFoundError(MemlensError):
    """A model id or path could not be resolved to a config (exit code 3)."""

    exit_code = 3


class ConfigError(MemlensError):
    """A model config exists but is corrupt, truncated or inconsistent (exit code 4)."""

    exit_code = 4


class UnsupportedArchitectureError(MemlensError):
    """No estimator can describe this architecture (exit code 5)."""

    exit_code = 5


class DependencyError(MemlensError):
    """An optional dependency needed for this operation is missing (exit code 6)."""

    exit_code = 6


class SessionBudgetError(MemlensError):
    """A chat session does not fit the session store's memory budget, alone or beside
    the sessions that cannot be moved out of memory (exit code 7)."""

    exit_code = 7


class SpillError(MemlensError):
    """A chat session could not be written to or read back from the cold tier's spill
    folder (exit code 8)."""

    exit_code = 8


class SessionLostError(MemlensError):
    """The chat session was closed, or its spill file was found corrupt (exit code 9)."""

    exit_code = 9


class MalformedReportError(MemlensError):
    """A worker result a view cannot draw; the message names the bad field."""
