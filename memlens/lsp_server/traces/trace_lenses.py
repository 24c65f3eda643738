"""Which functions of a document have spans, and what their code lens says.

A span's code location (``code.file.path``/``code.line.number``) is the line that started
it: a handler's body, or the call that went out. Each located span counts for the
innermost function whose lines hold it; the lens sits on that function's ``def`` line and
reads ``12 traces · 1 error · p50 34 ms · open`` (distinct traces, those of them with an
error span in the function, median span duration).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field

from memlens.tracing.topology import percentile

__all__ = ["FunctionRange", "FunctionTraces", "function_ranges", "function_traces", "lens_title"]

CodeDuration = tuple[str, int, str | None, str, int, int, bool]
"""(path, line, function, trace_id, start_ns, duration_ns, error), as the store yields
them."""


@dataclass(frozen=True)
class FunctionRange:
    """A ``def`` in a document; lines 0-based and inclusive."""

    name: str
    def_line: int
    first_line: int
    """The first decorator's line, else the ``def`` line."""
    last_line: int


@dataclass
class FunctionTraces:
    """The spans started inside one function."""

    function: FunctionRange
    trace_ids: set[str] = field(default_factory=set)
    error_trace_ids: set[str] = field(default_factory=set)
    """The traces with an error span started in this function."""
    durations_ms: list[float] = field(default_factory=list)
    latest_trace_id: str = ""
    latest_start_ns: int = -1

    def add(self, trace_id: str, start_ns: int, duration_ns: int, error: bool = False) -> None:
        """Count one span."""
        self.trace_ids.add(trace_id)
        if error:
            self.error_trace_ids.add(trace_id)
        self.durations_ms.append(duration_ns / 1e6)
        if start_ns >= self.latest_start_ns:
            self.latest_trace_id, self.latest_start_ns = trace_id, start_ns

    @property
    def p50_ms(self) -> float:
        """Median span duration in milliseconds."""
        return percentile(self.durations_ms, 50)


def function_ranges(tree: ast.Module) -> list[FunctionRange]:
    """Every function and method of a parsed document, outer before inner."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            last = node.end_lineno or node.lineno
            found.append(FunctionRange(node.name, node.lineno - 1, first - 1, last - 1))
    return sorted(found, key=lambda f: (f.first_line, -f.last_line))


def _innermost(ranges: list[FunctionRange], line: int) -> FunctionRange | None:
    holding = [f for f in ranges if f.first_line <= line <= f.last_line]
    return min(holding, key=lambda f: f.last_line - f.first_line) if holding else None


def function_traces(
    ranges: list[FunctionRange], rows: Iterable[CodeDuration]
) -> list[FunctionTraces]:
    """Spans grouped by the function holding their 1-based code line; spans outside every
    function (module level) are left out."""
    by_function: dict[FunctionRange, FunctionTraces] = {}
    for _path, line, _function, trace_id, start_ns, duration_ns, error in rows:
        function = _innermost(ranges, line - 1)
        if function is not None:
            entry = by_function.setdefault(function, FunctionTraces(function))
            entry.add(trace_id, start_ns, duration_ns, error)
    return sorted(by_function.values(), key=lambda t: t.function.def_line)


def _format_ms(ms: float) -> str:
    if ms >= 1000:
        return f"{ms / 1000:.1f} s"
    if ms >= 10:
        return f"{ms:.0f} ms"
    return f"{ms:.1f} ms"


def lens_title(traces: FunctionTraces) -> str:
    """``12 traces · p50 34 ms · open``; ``5 traces · 1 error · p50 …`` when some of them
    failed."""
    errors = len(traces.error_trace_ids)
    failed = f" · {_counted(errors, 'error')}" if errors else ""
    return (
        f"{_counted(len(traces.trace_ids), 'trace')}{failed} · p50 {_format_ms(traces.p50_ms)}"
        " · open"
    )


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
