"""The parsed top-level statements of open documents, kept so that an edit inside one
function re-parses that function only.

Bounded three ways: in entries, in the bytes of source the cached trees were parsed from
(a tree costs roughly a fixed number of objects per source byte, and every object
lengthens the garbage collector's full passes), and per document: a document keeps only
the chunks of its latest parse, and a closed document releases all of its entries.
Least recently used entries go first when a bound is reached.
"""

from __future__ import annotations

import ast
from collections import OrderedDict
from dataclasses import dataclass

MAX_ENTRIES = 4096
MAX_SOURCE_BYTES = 2**20

ChunkKey = tuple[int, str]
"""(first line, text) of one top-level chunk: the same text at another line parses to
other line numbers."""


@dataclass(frozen=True)
class ParseCacheSize:
    """What the cache holds now."""

    entries: int
    source_bytes: int
    """Bytes (UTF-8) of the source the cached statements were parsed from."""
    documents: int


class ParseCache:
    """Parsed chunks by (document, chunk), least recently used first."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_source_bytes: int = MAX_SOURCE_BYTES):
        self.max_entries = max_entries
        self.max_source_bytes = max_source_bytes
        self._entries: OrderedDict[tuple[str, ChunkKey], tuple[list[ast.stmt], int]] = OrderedDict()
        self._by_document: dict[str, set[ChunkKey]] = {}
        self._source_bytes = 0

    def get(self, document: str, key: ChunkKey) -> list[ast.stmt] | None:
        """The statements cached for this chunk of ``document`` (now most recently used)."""
        found = self._entries.get((document, key))
        if found is None:
            return None
        self._entries.move_to_end((document, key))
        return found[0]

    def put(self, document: str, key: ChunkKey, statements: list[ast.stmt]) -> None:
        """Cache a chunk's statements, evicting the least recently used entries beyond
        the bounds (a chunk larger than the byte bound is not kept)."""
        size = len(key[1].encode("utf-8", "surrogatepass"))
        if size > self.max_source_bytes:
            return
        self._remove(document, key)
        self._entries[(document, key)] = (statements, size)
        self._by_document.setdefault(document, set()).add(key)
        self._source_bytes += size
        while len(self._entries) > self.max_entries or self._source_bytes > self.max_source_bytes:
            (oldest_document, oldest_key), _ = next(iter(self._entries.items()))
            self._remove(oldest_document, oldest_key)

    def retain(self, document: str, keys: set[ChunkKey]) -> None:
        """Keep only ``keys`` of ``document``: after a parse, the chunks its latest
        version no longer has (an edited function's old text) go."""
        for key in self._by_document.get(document, set()) - keys:
            self._remove(document, key)

    def release(self, document: str) -> None:
        """Drop every entry of ``document`` (it was closed)."""
        for key in list(self._by_document.get(document, ())):
            self._remove(document, key)

    def size(self, document: str | None = None) -> ParseCacheSize:
        """What the cache holds, in all or for one document."""
        if document is None:
            return ParseCacheSize(len(self._entries), self._source_bytes, len(self._by_document))
        keys = self._by_document.get(document, set())
        held = sum(self._entries[(document, key)][1] for key in keys)
        return ParseCacheSize(len(keys), held, 1 if keys else 0)

    def holds(self, document: str) -> bool:
        """Whether any chunk of ``document`` is cached."""
        return document in self._by_document

    def documents(self) -> set[str]:
        """The documents with cached chunks."""
        return set(self._by_document)

    def _remove(self, document: str, key: ChunkKey) -> None:
        found = self._entries.pop((document, key), None)
        if found is None:
            return
        self._source_bytes -= found[1]
        keys = self._by_document[document]
        keys.discard(key)
        if not keys:
            del self._by_document[document]
