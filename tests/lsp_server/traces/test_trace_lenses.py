"""memlens.lsp_server.traces.trace_lenses: spans → functions → lens titles."""

from __future__ import annotations

import ast

from memlens.lsp_server.traces.trace_lenses import function_ranges, function_traces, lens_title

SOURCE = """\
import functools


@functools.cache
def handler(request):          # line 5
    def inner():               # line 6
        return 1               # line 7
    return inner()             # line 8


async def fetch():             # line 11
    return 2                   # line 12


x = 1                          # line 15
"""
MS = 1_000_000


def _row(
    line: int, trace: str, start: int, ms: float, error: bool = False
) -> tuple[str, int, None, str, int, int, bool]:
    return ("/w/app.py", line, None, trace, start, int(ms * MS), error)


def test_function_ranges_cover_decorators_and_nesting() -> None:
    ranges = {f.name: f for f in function_ranges(ast.parse(SOURCE))}
    assert (ranges["handler"].first_line, ranges["handler"].def_line) == (3, 4)
    assert ranges["handler"].last_line == 7
    assert (ranges["inner"].def_line, ranges["inner"].last_line) == (5, 6)
    assert (ranges["fetch"].def_line, ranges["fetch"].last_line) == (10, 11)


def test_spans_count_for_the_innermost_function_and_module_level_is_left_out() -> None:
    ranges = function_ranges(ast.parse(SOURCE))
    rows = [
        _row(7, "t1", 10, 4.0),  # inner
        _row(8, "t1", 11, 10.0),  # handler
        _row(8, "t2", 30, 30.0),  # handler, a later trace
        _row(4, "t3", 20, 20.0),  # the decorator line counts for handler
        _row(12, "t4", 5, 1500.0),  # fetch
        _row(15, "t5", 99, 1.0),  # module level
    ]
    found = {t.function.name: t for t in function_traces(ranges, rows)}
    assert set(found) == {"handler", "inner", "fetch"}
    handler = found["handler"]
    assert handler.trace_ids == {"t1", "t2", "t3"}
    assert handler.latest_trace_id == "t2"
    assert handler.p50_ms == 20.0
    assert lens_title(handler) == "3 traces · p50 20 ms · open"
    assert lens_title(found["inner"]) == "1 trace · p50 4.0 ms · open"
    assert lens_title(found["fetch"]) == "1 trace · p50 1.5 s · open"


def test_lenses_count_the_traces_with_errors() -> None:
    """Issue 17: lenses did not mention errors."""
    ranges = function_ranges(ast.parse(SOURCE))
    rows = [
        _row(8, "t1", 1, 10.0),
        _row(8, "t2", 2, 10.0, error=True),
        _row(8, "t2", 3, 10.0, error=True),  # the same trace twice: one error
        _row(8, "t3", 4, 10.0),
        _row(12, "t4", 5, 2.0, error=True),
        _row(12, "t5", 6, 2.0, error=True),
    ]
    found = {t.function.name: t for t in function_traces(ranges, rows)}
    assert lens_title(found["handler"]) == "3 traces · 1 error · p50 10 ms · open"
    assert lens_title(found["fetch"]) == "2 traces · 2 errors · p50 2.0 ms · open"
