"""The entry-bounded mapping (memlens/lsp_server/analysis/lru.py)."""

from __future__ import annotations

import pytest

from memlens.lsp_server.analysis.lru import Lru


def test_the_least_recently_used_entry_goes_first() -> None:
    cache: Lru[str, int] = Lru(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)
    assert len(cache) == 2
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == (1, 3)


def test_rewriting_an_entry_keeps_one_copy() -> None:
    cache: Lru[str, int] = Lru(2)
    for value in range(5):
        cache.put("a", value)
    assert len(cache) == 1
    assert cache.get("a") == 4


@pytest.mark.parametrize("bad", [0, -1])
def test_a_bound_below_one_entry_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="at least one"):
        Lru(bad)
