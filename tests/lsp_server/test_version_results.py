"""Per-version answers (memlens/lsp_server/version_results.py): computed once per
document version and views' generation, recomputed when either changes, dropped when the
document closes."""

from __future__ import annotations

from memlens.lsp_server.version_results import VersionResults


def test_a_result_is_computed_once_per_version_and_generation() -> None:
    results = VersionResults()
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert results.of("a.py", 1).get("hints", compute) == 1
    assert results.of("a.py", 1).get("hints", compute) == 1
    assert results.of("a.py", 2).get("hints", compute) == 2
    first = results.of("a.py", 2).serial
    results.invalidate()  # settings or traces changed
    assert results.of("a.py", 2).get("hints", compute) == 3
    assert results.of("a.py", 2).serial != first
    assert results.documents() == {"a.py"}
    results.release("a.py")
    assert results.documents() == set()
