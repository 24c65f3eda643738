"""Answers computed once per document version: repeated inlay-hint, code-lens and
diagnostic requests on an unchanged document reuse what was computed for it.

A document's results are dropped when its version changes, when the views' generation
changes (settings or traces changed: see ``MemlensServer.refresh_views``), after
``MAX_AGE_S`` (estimates of models on disk may change: the estimator re-reads configs as
often), and when the document is closed.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any, TypeVar

from memlens.lsp_server.analysis.estimates import CACHE_SECONDS

MAX_AGE_S = CACHE_SECONDS
T = TypeVar("T")


class DocumentResults:
    """The results of one version of one document, by name."""

    def __init__(self, version: int | None, generation: int, serial: int) -> None:
        self.version = version
        self.generation = generation
        self.serial = serial
        """Unique among every ``DocumentResults`` this server made: a pulled-diagnostics
        result id."""
        self.created = time.monotonic()
        self._values: dict[str, Any] = {}

    def get(self, name: str, compute: Callable[[], T]) -> T:
        """The result called ``name``, computed on first use."""
        if name not in self._values:
            self._values[name] = compute()
        value: T = self._values[name]
        return value


class VersionResults:
    """Every open document's :class:`DocumentResults`."""

    def __init__(self) -> None:
        self.generation = 0
        """Bumped when something besides the text changes what the answers are."""
        self._documents: dict[str, DocumentResults] = {}
        self._serials = itertools.count(1)

    def of(self, uri: str, version: int | None) -> DocumentResults:
        """The results of ``uri`` at ``version`` (fresh when stale)."""
        found = self._documents.get(uri)
        if (
            found is None
            or found.version != version
            or found.generation != self.generation
            or time.monotonic() - found.created > MAX_AGE_S
        ):
            found = DocumentResults(version, self.generation, next(self._serials))
            self._documents[uri] = found
        return found

    def invalidate(self) -> None:
        """Every document's answers may have changed (settings, traces)."""
        self.generation += 1

    def release(self, uri: str) -> None:
        """Drop a closed document's results."""
        self._documents.pop(uri, None)

    def documents(self) -> set[str]:
        """The documents with results."""
        return set(self._documents)
