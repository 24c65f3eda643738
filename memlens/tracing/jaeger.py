"""Deep links into a team's Jaeger UI (``memlens.jaeger.url`` / ``--jaeger-url``)."""

from __future__ import annotations

import re
import urllib.parse

from memlens.errors import UsageError

__all__ = ["search_url", "trace_url", "validate_base_url"]

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")


def validate_base_url(url: str) -> str:
    """The Jaeger UI base URL without a trailing slash; UsageError unless http(s)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UsageError(f"Jaeger URL {url!r} is not http(s)://host[:port][/path]")
    return url.rstrip("/")


def trace_url(base: str, trace_id: str, span_id: str | None = None) -> str:
    """``{base}/trace/{trace_id}``, with ``?uiFind={span_id}`` to highlight one span."""
    trace_id = trace_id.lower()
    if not _TRACE_ID.fullmatch(trace_id):
        raise UsageError(f"trace id {trace_id!r} is not 32 hex digits")
    url = f"{validate_base_url(base)}/trace/{trace_id}"
    if span_id is not None:
        if not _SPAN_ID.fullmatch(span_id.lower()):
            raise UsageError(f"span id {span_id!r} is not 16 hex digits")
        url += "?" + urllib.parse.urlencode({"uiFind": span_id.lower()})
    return url


def search_url(
    base: str, service: str, start_ns: int, end_ns: int, operation: str | None = None
) -> str:
    """Jaeger's search page for a service over [start_ns, end_ns] (Jaeger wants µs)."""
    if end_ns < start_ns:
        raise UsageError("the search window ends before it starts")
    query = {"service": service, "start": str(start_ns // 1000), "end": str(end_ns // 1000)}
    if operation:
        query["operation"] = operation
    return f"{validate_base_url(base)}/search?{urllib.parse.urlencode(query)}"
