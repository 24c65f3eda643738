"""Property-based: the tolerant parse (memlens/lsp_server/analysis/tolerant_parse.py) of
any text that Python parses means what Python's own parse means."""

from __future__ import annotations

import ast
import warnings

from hypothesis import given, settings
from hypothesis import strategies as st

from memlens.lsp_server.analysis import ParseCache, parse_tolerant
from tests.support.lsp_sources import corpus

CORPUS = corpus()
CACHE = ParseCache(max_entries=64, max_source_bytes=4096)
"""Shared by the examples: each parse reuses (and evicts) what the previous ones left."""


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(CORPUS), st.data())
def test_chunked_parse_equals_a_whole_parse(source: str, data: st.DataObject) -> None:
    """Parsing per top-level statement, and the parse cache, never change what the parse
    means."""
    start = data.draw(st.integers(0, len(source)))
    end = data.draw(st.integers(start, min(len(source), start + 200)))
    junk = data.draw(st.text(alphabet="()[]{}:,'\"\\\n\t #=.x0@", max_size=30))
    text = source[:start] + junk + source[end:]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes in mutated strings
            whole = ast.parse(text)
    except (SyntaxError, ValueError):
        return
    parsed = parse_tolerant(text)
    assert ast.dump(parsed.tree, include_attributes=True) == ast.dump(
        whole, include_attributes=True
    )
    cached = parse_tolerant(text, CACHE, data.draw(st.sampled_from(["a.py", "b.py"])))
    assert ast.dump(cached.tree, include_attributes=True) == ast.dump(
        whole, include_attributes=True
    )


_SPLIT_BY_STATEMENTS = '''\
"""Docstring."""
import os; import sys  # two statements on one line


@decorator(
    1,
)
def f():
    return 1
# a comment at column 0
class A:
    x = """
not a statement at column 0
"""
'''
_WRONG_SPLIT = "x = f(\na)\ny = 2\n"
"""A continuation line at column 0, which the line-based split takes for a statement
start: a statement crosses a chunk's end."""


def test_a_first_parse_in_one_piece_caches_what_a_parse_per_chunk_caches() -> None:
    """A document the cache holds nothing of is parsed whole and split into its chunks:
    the same trees as Python's parse, and the chunks an edit then re-parses one by one."""
    for text in (_SPLIT_BY_STATEMENTS, _WRONG_SPLIT):
        cache = ParseCache()
        first = parse_tolerant(text, cache, "a.py")
        assert ast.dump(first.tree, include_attributes=True) == ast.dump(
            ast.parse(text), include_attributes=True
        )
        again = parse_tolerant(text, cache, "a.py")  # chunk by chunk, from the cache
        assert ast.dump(again.tree, include_attributes=True) == ast.dump(
            first.tree, include_attributes=True
        )
    cache = ParseCache()
    parse_tolerant(_SPLIT_BY_STATEMENTS, cache, "a.py")
    chunks = cache.size("a.py").entries
    assert chunks == 4  # the docstring, the imports, f with the comment after it, class A
    text = _SPLIT_BY_STATEMENTS.replace("return 1", "return 2")
    edited = parse_tolerant(text, cache, "a.py")
    assert ast.dump(edited.tree) == ast.dump(ast.parse(text))
    assert cache.size("a.py").entries == chunks
