"""W3C Trace Context (``traceparent``/``tracestate``) and Jaeger ``uber-trace-id`` propagation.

Built on OpenTelemetry's propagator API. :class:`W3CTraceContextPropagator` is stricter than
OpenTelemetry's own ``TraceContextTextMapPropagator`` where the Trace Context spec
(https://www.w3.org/TR/trace-context/) is: a request that carries ``traceparent`` more than
once starts a new trace, and trace-flag bits this version of the spec does not define are
not propagated. Everything else (uppercase hex, all-zero ids, version ``ff``, extra fields
on version ``00``, a bad tracestate) is handled the same way by both, and the test corpus
checks that.

:func:`propagator_from_env` reads ``OTEL_PROPAGATORS`` (``tracecontext``, ``baggage``,
``jaeger``, ``none``) the way the OpenTelemetry SDK does, so a service that still speaks
Jaeger's ``uber-trace-id`` can be traced without the deprecated ``jaeger-client``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators import textmap
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.jaeger import JaegerPropagator
from opentelemetry.trace.span import TraceState

from memlens.errors import UsageError

__all__ = [
    "KNOWN_FLAGS",
    "TRACEPARENT",
    "TRACESTATE",
    "TraceParent",
    "W3CTraceContextPropagator",
    "format_traceparent",
    "parse_traceparent",
    "parse_tracestate",
    "propagator_from_env",
]

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
KNOWN_FLAGS = 0x03
"""Trace-flag bits defined by Trace Context level 2: ``sampled`` (0x01) and ``random`` (0x02)."""

_MAX_TRACESTATE_MEMBERS = 32
_MAX_TRACESTATE_LENGTH = 512
# version "-" trace-id "-" parent-id "-" flags, then for versions above 00 optional "-" ...
_TRACEPARENT_RE = re.compile(
    r"(?P<version>[0-9a-f]{2})-(?P<trace_id>[0-9a-f]{32})-(?P<span_id>[0-9a-f]{16})"
    r"-(?P<flags>[0-9a-f]{2})(?P<rest>-.*)?"
)
_KEY_RE = re.compile(
    r"[a-z][_0-9a-z\-\*/]{0,255}|[a-z0-9][_0-9a-z\-\*/]{0,240}@[a-z][_0-9a-z\-\*/]{0,13}"
)
_VALUE_RE = re.compile(r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]")


@dataclass(frozen=True)
class TraceParent:
    """A parsed, valid ``traceparent``: ids as lowercase hex, flags as an int bit field."""

    version: int
    trace_id: str
    """32 lowercase hex digits, not all zero."""
    span_id: str
    """16 lowercase hex digits (the caller's span, our parent), not all zero."""
    flags: int
    """Bit field; only :data:`KNOWN_FLAGS` bits are kept."""

    @property
    def sampled(self) -> bool:
        """Whether the caller recorded its span (flag bit 0x01)."""
        return bool(self.flags & 0x01)


def parse_traceparent(value: str | None) -> TraceParent | None:
    """Parse one ``traceparent`` header value; ``None`` where the spec says to start anew.

    Optional whitespace around the value (RFC 9110) is allowed; anything else that is not
    exactly ``version-traceid-parentid-flags`` in lowercase hex is rejected, as are all-zero
    ids, version ``ff``, and extra fields on version ``00``. A higher version is parsed by its
    first four fields, as the spec asks.
    """
    if value is None:
        return None
    match = _TRACEPARENT_RE.fullmatch(value.strip(" \t"))
    if match is None:
        return None
    version = int(match["version"], 16)
    if version == 0xFF or (version == 0 and match["rest"] is not None):
        return None
    trace_id, span_id = match["trace_id"], match["span_id"]
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return TraceParent(version, trace_id, span_id, int(match["flags"], 16) & KNOWN_FLAGS)


def parse_tracestate(values: list[str]) -> TraceState | None:
    """Combine ``tracestate`` header values into a TraceState; ``None`` when invalid.

    Invalid: a malformed member, a duplicate key, more than 32 members or more than 512
    characters in all. Empty members are allowed and skipped.
    """
    if sum(len(v) for v in values) + max(len(values) - 1, 0) > _MAX_TRACESTATE_LENGTH:
        return None
    pairs: dict[str, str] = {}
    for header in values:
        for raw in header.split(","):
            member = raw.strip(" \t")
            if not member:
                continue
            key, sep, val = member.partition("=")
            if not sep or not _KEY_RE.fullmatch(key) or not _VALUE_RE.fullmatch(val):
                return None
            if key in pairs:
                return None
            pairs[key] = val
    if len(pairs) > _MAX_TRACESTATE_MEMBERS:
        return None
    return TraceState(list(pairs.items()))


def format_traceparent(trace_id: int, span_id: int, flags: int) -> str:
    """The version-00 header for a span context (unknown flag bits are cleared)."""
    return f"00-{trace_id:032x}-{span_id:016x}-{flags & KNOWN_FLAGS:02x}"


class W3CTraceContextPropagator(textmap.TextMapPropagator):
    """Injects and extracts ``traceparent``/``tracestate`` exactly per W3C Trace Context."""

    def extract(
        self,
        carrier: textmap.CarrierT,
        context: Context | None = None,
        getter: textmap.Getter[textmap.CarrierT] = textmap.default_getter,
    ) -> Context:
        """The carrier's remote span context set in ``context``; unchanged when invalid."""
        context = Context() if context is None else context
        headers = getter.get(carrier, TRACEPARENT)
        # one traceparent only: several (or a comma-joined list) make the header invalid
        if not headers or len(headers) != 1:
            return context
        parent = parse_traceparent(headers[0])
        if parent is None:
            return context
        state_headers = getter.get(carrier, TRACESTATE)
        state = parse_tracestate(list(state_headers)) if state_headers else None
        span_context = trace.SpanContext(
            trace_id=int(parent.trace_id, 16),
            span_id=int(parent.span_id, 16),
            is_remote=True,
            trace_flags=trace.TraceFlags(parent.flags),
            trace_state=state,
        )
        return trace.set_span_in_context(trace.NonRecordingSpan(span_context), context)

    def inject(
        self,
        carrier: textmap.CarrierT,
        context: Context | None = None,
        setter: textmap.Setter[textmap.CarrierT] = textmap.default_setter,
    ) -> None:
        """Set ``traceparent`` (and ``tracestate`` when not empty) from the current span."""
        span_context = trace.get_current_span(context).get_span_context()
        if not span_context.is_valid:
            return
        setter.set(
            carrier,
            TRACEPARENT,
            format_traceparent(
                span_context.trace_id, span_context.span_id, span_context.trace_flags
            ),
        )
        if span_context.trace_state:
            setter.set(carrier, TRACESTATE, span_context.trace_state.to_header())

    @property
    def fields(self) -> set[str]:
        """The headers :meth:`inject` sets."""
        return {TRACEPARENT, TRACESTATE}


_PROPAGATORS: dict[str, type[textmap.TextMapPropagator]] = {
    "tracecontext": W3CTraceContextPropagator,
    "baggage": W3CBaggagePropagator,
    "jaeger": JaegerPropagator,
}
"""``OTEL_PROPAGATORS`` names memlens understands."""


def propagator_from_env(env: Mapping[str, str] | None = None) -> textmap.TextMapPropagator:
    """The propagator ``OTEL_PROPAGATORS`` names (default ``tracecontext,baggage``).

    Raises UsageError for a name memlens does not know, listing the ones it does.
    """
    env = os.environ if env is None else env
    raw = env.get("OTEL_PROPAGATORS", "tracecontext,baggage")
    names = [n.strip().lower() for n in raw.split(",") if n.strip()]
    if names == ["none"]:
        return CompositePropagator([])
    unknown = [n for n in names if n not in _PROPAGATORS]
    if unknown:
        raise UsageError(
            f"OTEL_PROPAGATORS names {', '.join(unknown)}, which memlens does not know; "
            f"use a comma-separated list of {', '.join(sorted(_PROPAGATORS))} or none"
        )
    return CompositePropagator([_PROPAGATORS[n]() for n in dict.fromkeys(names)])
