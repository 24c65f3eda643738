"""A team's Jaeger (``memlens.jaeger.url`` / ``--jaeger-url``): deep links into its UI, and
:class:`JaegerClient`, which reads traces through its HTTP query API
(``/api/services``, ``/api/traces/{id}``, ``/api/traces?service=&start=&end=``) as the
same :class:`SpanRecord` lists the local store gives."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from memlens.errors import MemlensError, UsageError
from memlens.tracing.records import SpanRecord

__all__ = [
    "JaegerClient",
    "JaegerError",
    "base_url",
    "search_url",
    "spans_of_traces",
    "trace_link",
    "trace_url",
    "validate_base_url",
]

_SPAN_ID = re.compile(r"[0-9a-f]{16}")
_TRACE_ID = re.compile(r"[0-9a-f]{16}(?:[0-9a-f]{16})?")
"""Trace ids Jaeger knows: 64-bit (its own clients') or 128-bit (W3C), lowercase hex."""


def base_url(setting: object) -> str | None:
    """The ``memlens.jaeger.url`` setting as a base for links: ``http(s)://…`` without
    whitespace once trimmed, trailing slashes stripped; None for anything else, so that a
    bad or empty setting gives no links rather than a broken one."""
    if not isinstance(setting, str):
        return None
    text = setting.strip()
    if not text or any(c.isspace() for c in text):
        return None
    try:
        return validate_base_url(text)
    except UsageError:
        return None


def trace_link(base: str | None, trace_id: str) -> str | None:
    """The Jaeger UI page of one trace, ``{base}/trace/{trace_id}``; None without a base or
    when the id is not 16 or 32 lowercase hex digits."""
    if base is None or not _TRACE_ID.fullmatch(trace_id):
        return None
    return f"{base}/trace/{trace_id}"


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
        raise UsageError(f"trace id {trace_id!r} is not 16 or 32 hex digits")
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


class JaegerError(MemlensError):
    """Jaeger's query API cannot be reached or did not answer what it documents."""


_KINDS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
_MAPPED_TAGS = frozenset({"span.kind", "otel.status_code", "otel.status_description"})
"""Tags that become SpanRecord fields rather than attributes."""


def _tags(items: Any) -> dict[str, Any]:
    if not isinstance(items, list):
        return {}
    return {str(t["key"]): t.get("value") for t in items if isinstance(t, dict) and "key" in t}


def _hex(value: Any, digits: int, what: str) -> str:
    text = str(value).lower()
    if not re.fullmatch(rf"[0-9a-f]{{1,{digits}}}", text):
        raise JaegerError(f"Jaeger sent {what} {str(value)[:40]!r}, not hex")
    return text.zfill(digits)  # Jaeger drops leading zeros (and keeps 64-bit trace ids)


def _span(span: dict[str, Any], processes: dict[str, Any]) -> SpanRecord:
    process = processes.get(span.get("processID", ""), {})
    tags = _tags(span.get("tags"))
    resource = _tags(process.get("tags"))
    service = str(process.get("serviceName") or "unknown_service")
    resource["service.name"] = service
    status = str(tags.get("otel.status_code", "")).upper()
    status_code = 2 if status == "ERROR" or tags.get("error") is True else int(status == "OK")
    references = [r for r in span.get("references") or [] if isinstance(r, dict)]
    parent = next(
        (r for r in references if r.get("refType") == "CHILD_OF"),
        references[0] if references else None,
    )
    start_us, duration_us = int(span["startTime"]), int(span.get("duration", 0))
    return SpanRecord(
        trace_id=_hex(span["traceID"], 32, "traceID"),
        span_id=_hex(span["spanID"], 16, "spanID"),
        parent_span_id=_hex(parent["spanID"], 16, "spanID") if parent else None,
        name=str(span.get("operationName", "")),
        kind=_KINDS.get(str(tags.get("span.kind", "")).lower(), 0),
        service=service,
        start_ns=start_us * 1000,
        end_ns=(start_us + max(duration_us, 0)) * 1000,
        status_code=status_code,
        status_message=str(tags.get("otel.status_description", "")),
        attributes={k: v for k, v in tags.items() if k not in _MAPPED_TAGS},
        resource=resource,
        events=[
            {
                "name": str(fields.pop("event", "log")),
                "time_ns": int(log.get("timestamp", 0)) * 1000,
                "attributes": fields,
            }
            for log in span.get("logs") or []
            if isinstance(log, dict)
            for fields in [_tags(log.get("fields"))]
        ],
    )


def spans_of_traces(traces: Any) -> list[SpanRecord]:
    """SpanRecords (ids zero-padded lowercase hex, times in ns) of Jaeger's trace JSON: the
    ``data`` list of ``/api/traces`` answers, ordered by trace then start time."""
    if not isinstance(traces, list):
        raise JaegerError("Jaeger's answer has no list of traces under 'data'")
    spans: list[SpanRecord] = []
    try:
        for trace in traces:
            processes = trace.get("processes") or {}
            records = [_span(s, processes) for s in trace.get("spans") or []]
            spans.extend(sorted(records, key=lambda s: s.start_ns))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise JaegerError(
            f"Jaeger's trace JSON is not what its query API documents: {exc!r}"
        ) from exc
    return spans


@dataclass(frozen=True)
class JaegerClient:
    """Reads a team's Jaeger through its HTTP query API (the one its UI uses, at the UI's
    base URL). Every method raises JaegerError with a message for the user."""

    base_url: str
    """Jaeger UI / query base URL, e.g. ``http://localhost:16686``."""
    timeout_s: float = 10.0
    """Seconds to wait for each answer."""

    def _get(self, path: str, query: dict[str, str] | None = None, missing_ok: bool = False) -> Any:
        """The ``data`` of Jaeger's answer; None for a 404 when ``missing_ok``."""
        url = f"{validate_base_url(self.base_url)}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and missing_ok:
                return None
            hint = " (is this Jaeger's UI/query URL?)" if exc.code == 404 else ""
            raise JaegerError(
                f"Jaeger at {url} answered HTTP {exc.code}{hint}: {_message(exc.read())}"
            ) from exc
        except (OSError, ValueError) as exc:
            raise JaegerError(f"cannot reach Jaeger at {url}: {exc}") from exc
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise JaegerError(
                f"Jaeger at {url} did not answer JSON (is this Jaeger's query port, "
                f"usually 16686?): {body[:60]!r}"
            ) from exc
        if not isinstance(document, dict):
            raise JaegerError(f"Jaeger at {url} answered JSON that is not an object")
        if document.get("errors"):
            raise JaegerError(f"Jaeger at {url}: {_message(body)}")
        return document.get("data")

    def services(self) -> list[str]:
        """The services Jaeger has spans of."""
        data = self._get("/api/services")
        if not isinstance(data, list):
            raise JaegerError("Jaeger's /api/services answer has no list of services")
        return sorted(str(name) for name in data)

    def trace(self, trace_id: str) -> list[SpanRecord]:
        """Every span of one trace, by start time; empty when Jaeger does not have it."""
        trace_id = trace_id.lower()
        if not _TRACE_ID.fullmatch(trace_id):
            raise UsageError(f"trace id {trace_id!r} is not 16 or 32 hex digits")
        data = self._get(f"/api/traces/{trace_id}", missing_ok=True)
        return [] if data is None else spans_of_traces(data)

    def search(self, service: str, start_ns: int, end_ns: int, limit: int = 20) -> list[SpanRecord]:
        """The spans of up to ``limit`` traces of ``service`` in [start_ns, end_ns] (Jaeger
        searches in µs), grouped by trace, each by start time."""
        if end_ns < start_ns:
            raise UsageError("the search window ends before it starts")
        if limit <= 0:
            raise UsageError("the trace limit must be positive")
        query = {
            "service": service,
            "start": str(start_ns // 1000),
            "end": str(-(-end_ns // 1000)),
            "limit": str(limit),
        }
        return spans_of_traces(self._get("/api/traces", query))


def _message(body: bytes) -> str:
    """Jaeger's ``errors[].msg`` of an error answer, else the start of the body."""
    try:
        errors = json.loads(body).get("errors") or []
        return "; ".join(str(e.get("msg", e)) for e in errors) or body[:80].decode("replace")
    except (ValueError, AttributeError):
        return body[:80].decode("utf-8", "replace")
