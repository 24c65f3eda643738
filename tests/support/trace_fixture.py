"""The store behind the extension's ``vscode-extension/test/fixtures/trace-report.json``: the
trace view's webview tests draw the payload :func:`~memlens.tracing.trace_view.trace_report`
builds from it, and ``tests/tracing/test_trace_view.py`` checks the committed file is that
payload. After changing the payload, rewrite the file from the repository root with
``PYTHONPATH=$PWD .venv/bin/python -m tests.support.trace_fixture``.

The drawn trace (``SHOWN``) is one chat request: the gateway's root span with code
location attributes, a retriever span with the older ``code.filepath``/``code.lineno``
names, spans without a location. Twelve older requests, the newest of them ``OTHER``,
give the gateway → retriever and gateway → generator edges their calls, one error and
their percentiles.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from memlens.tracing.records import SpanRecord
from memlens.tracing.store import TraceStore
from memlens.tracing.trace_view import trace_report

__all__ = [
    "FIXTURE",
    "JAEGER_URL",
    "OTHER",
    "SHOWN",
    "fixture_report",
    "fixture_store",
    "shown_spans",
]

FIXTURE = Path(__file__).parents[2] / "vscode-extension" / "test" / "fixtures" / "trace-report.json"
SHOWN = "4bf92f3577b34da6a3ce929d0e0e4736"
OTHER = "5b8efff798038103d269b633813fc60c"
JAEGER_URL = "http://localhost:16686"
START_NS = 1_764_150_000_000_000_000
"""When the drawn trace starts (Unix ns)."""
NOW_NS = START_NS + 1_000_000_000
LISTED = 2
"""Recent traces the payload lists."""

_MS = 1_000_000
_RETRIEVER_MS = (19.8, 8.0, 8.5, 9.0, 9.5, 10.0, 11.2, 12.0, 13.0, 14.0, 15.0, 16.0)
"""Client-side latencies of gateway → retriever, newest request first: p50 11.2, p95 19.8."""
_GENERATOR_MS = (61.5, 25.0, 27.0, 29.0, 31.0, 33.0, 34.0, 36.0, 38.0, 40.0, 45.0, 50.0)
"""The same for gateway → generator: p50 34.0, p95 61.5."""


def _span(
    trace_id: str,
    span_id: str,
    parent: str | None,
    name: str,
    service: str,
    kind: int,
    start_ns: int,
    end_ns: int,
    *,
    error: bool = False,
    **attributes: Any,
) -> SpanRecord:
    return SpanRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind=kind,
        service=service,
        start_ns=start_ns,
        end_ns=end_ns,
        status_code=2 if error else 0,
        attributes=dict(attributes),
    )


def shown_spans() -> list[SpanRecord]:
    """The drawn trace's five spans, root first."""
    t, at = SHOWN, START_NS
    return [
        _span(t, "00f067aa0ba902b7", None, "POST /chat", "gateway", 2, at, at + 48_200_000,
              **{"http.method": "POST", "http.route": "/chat", "code.file.path":
                 "services/gateway.py", "code.line.number": 21, "code.function.name": "chat"}),
        _span(t, "53995c3f42cd8ad8", "00f067aa0ba902b7", "GET /search", "retriever", 3,
              at + 2_100_000, at + 13_500_000, **{"http.method": "GET", "code.filepath":
              "services/retriever.py", "code.lineno": 14, "code.function": "search"}),
        _span(t, "a2fb4a1d1a96d312", "53995c3f42cd8ad8", "sqlite query", "retriever", 3,
              at + 3_000_000, at + 9_200_000, **{"db.system": "sqlite"}),
        _span(t, "e457b5a2e4d86bd1", "00f067aa0ba902b7", "POST /generate", "generator", 3,
              at + 14_000_000, at + 47_500_000, **{"http.method": "POST", "code.file.path":
              "services/generator.py", "code.line.number": 30, "code.function.name":
              "generate"}),
        _span(t, "1c2d3e4f5a6b7c8d", "e457b5a2e4d86bd1", "decode", "generator", 3,
              at + 15_200_000, at + 46_099_999, **{"gen_ai.usage.output_tokens": 64}),
    ]  # fmt: skip


def _request(n: int, retriever_ms: float, generator_ms: float) -> list[SpanRecord]:
    """The ``n``-th most recent older request: gateway calls retriever, then generator."""
    t = OTHER if n == 0 else f"{n:032x}"
    at = START_NS - (n + 1) * 60_000 * _MS
    retrieved = at + _MS + round(retriever_ms * _MS)
    generated = retrieved + _MS // 2 + round(generator_ms * _MS)
    root, call_r, call_g = f"{16 * n + 1:016x}", f"{16 * n + 2:016x}", f"{16 * n + 3:016x}"
    return [
        _span(t, root, None, "POST /chat", "gateway", 2, at, generated + 400_000),
        _span(t, call_r, root, "GET /search", "gateway", 3, at + _MS, retrieved),
        _span(t, f"{16 * n + 4:016x}", call_r, "GET /search", "retriever", 2,
              at + 1_200_000, retrieved - 200_000),
        _span(t, call_g, root, "POST /generate", "gateway", 3, retrieved + _MS // 2, generated),
        _span(t, f"{16 * n + 5:016x}", call_g, "POST /generate", "generator", 2,
              retrieved + 700_000, generated - 200_000, error=n == 0),
    ]  # fmt: skip


def fixture_store(path: Path) -> TraceStore:
    """A store at ``path`` holding the shown trace and the twelve older requests."""
    store = TraceStore(path)
    store.insert(shown_spans())
    for n, (retriever_ms, generator_ms) in enumerate(
        zip(_RETRIEVER_MS, _GENERATOR_MS, strict=True)
    ):
        store.insert(_request(n, retriever_ms, generator_ms))
    return store


def fixture_report(folder: Path) -> dict[str, Any]:
    """The payload of the committed fixture, built in a store under ``folder``."""
    with fixture_store(folder / "traces.db") as store:
        return trace_report(store, SHOWN, limit=LISTED, jaeger_url=JAEGER_URL, now_ns=NOW_NS)


def _write() -> None:
    with tempfile.TemporaryDirectory() as folder:
        report = fixture_report(Path(folder))
    FIXTURE.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {FIXTURE}")


if __name__ == "__main__":
    _write()
