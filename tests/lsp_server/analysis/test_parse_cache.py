"""The bounded parse cache (memlens/lsp_server/analysis/parse_cache.py): least recently
used entries go first, the entry and source-byte bounds hold, a document keeps only its
latest parse's chunks, and a closed document releases everything it held."""

from __future__ import annotations

import ast

from memlens.lsp_server.analysis import ParseCache, ParseCacheSize, parse_tolerant


def _statements(text: str) -> list[ast.stmt]:
    return ast.parse(text).body


def test_least_recently_used_entries_are_evicted_first() -> None:
    cache = ParseCache(max_entries=2)
    cache.put("a.py", (0, "x = 1"), _statements("x = 1"))
    cache.put("b.py", (0, "y = 2"), _statements("y = 2"))
    assert cache.get("a.py", (0, "x = 1")) is not None  # a.py is now the most recent
    cache.put("c.py", (0, "z = 3"), _statements("z = 3"))
    assert cache.get("b.py", (0, "y = 2")) is None
    assert cache.get("a.py", (0, "x = 1")) is not None
    assert cache.documents() == {"a.py", "c.py"}


def test_the_source_byte_bound_holds_and_an_oversized_chunk_is_not_kept() -> None:
    cache = ParseCache(max_source_bytes=10)
    cache.put("a.py", (0, "é = 1"), _statements("é = 1"))  # 6 bytes: é is two in UTF-8
    cache.put("a.py", (1, "xy = 2"), _statements("xy = 2"))
    assert cache.size() == ParseCacheSize(entries=1, source_bytes=6, documents=1)
    cache.put("a.py", (2, "long_name = 12"), _statements("long_name = 12"))
    assert cache.size() == ParseCacheSize(entries=1, source_bytes=6, documents=1)


def test_a_document_keeps_only_its_latest_parse_and_releases_all_when_closed() -> None:
    cache = ParseCache()
    before = "def f():\n    return 1\n\n\ndef g():\n    return 2\n"
    parse_tolerant(before, cache, "a.py")
    parse_tolerant("w = 0\n", cache, "b.py")
    held = cache.size("a.py")
    assert held.entries == 2  # f, and g with the empty last line
    old_g = (4, "def g():\n    return 2\n")
    assert cache.get("a.py", old_g) is not None
    after = before.replace("return 2", "return 3")
    parse_tolerant(after, cache, "a.py")
    assert cache.size("a.py").entries == held.entries  # g's old text went
    assert cache.get("a.py", old_g) is None
    cache.release("a.py")
    assert cache.size("a.py") == ParseCacheSize(0, 0, 0)
    assert cache.documents() == {"b.py"}


def test_cached_chunks_parse_as_python_does_after_an_edit() -> None:
    cache = ParseCache()
    text = "import torch\n\n\nclass A:\n    x = 1\n\n\ny = A.x\n"
    parse_tolerant(text, cache, "a.py")
    edited = text.replace("x = 1", "x = 2")
    assert ast.dump(parse_tolerant(edited, cache, "a.py").tree, include_attributes=True) == (
        ast.dump(ast.parse(edited), include_attributes=True)
    )


def test_a_half_typed_document_keeps_the_chunks_before_the_error_only() -> None:
    cache = ParseCache()
    parse_tolerant("a = 1\n\n\ndef f():\n    return (\n\n\nb = 2\n", cache, "a.py")
    assert cache.get("a.py", (0, "a = 1\n\n")) is not None
    assert cache.documents() == {"a.py"}
    assert cache.size("a.py").entries == 1


def test_a_multi_line_decorator_stays_with_its_class() -> None:
    """Regression (issue 13): a ``)`` at column 0 closing ``@auto_docstring(`` split the
    decorator from its class, so 381 of transformers' 538 modeling files were parsed
    twice (per statement, then whole) and kept nothing in the cache."""
    text = 'import torch\n\n\n@auto_docstring(\n    custom_intro="x",\n)\nclass A:\n    pass\n'
    cache = ParseCache()
    parsed = parse_tolerant(text, cache, "a.py")
    assert cache.size("a.py").entries == 2  # the import, and the decorated class
    assert ast.dump(parsed.tree, include_attributes=True) == ast.dump(
        ast.parse(text), include_attributes=True
    )
