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
