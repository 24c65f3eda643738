"""W3C Trace Context (``traceparent``/``tracestate``) and Jaeger ``uber-trace-id`` propagation.

Built on OpenTelemetry's propagator API. :class:`W3CTraceContextPropagator` follows Trace
Context Level 2 (https://www.w3.org/TR/trace-context-2/) where OpenTelemetry's own
``TraceContextTextMapPropagator`` does not: a request that carries ``traceparent`` more than
once starts a new trace; trace-flag bits the spec does not define are not propagated;
``tracestate`` keys follow Level 2's grammar (``@`` anywhere after the first character, up
to 256 characters), and an invalid or duplicated member is dropped alone instead of taking
the whole header with it. Other invalid ``traceparent`` headers (uppercase hex, all-zero
ids, version ``ff``, extra fields on version ``00``) start a new trace in both; the tests
check each rule against both propagators. docs/tracing.md lists the differences.

:func:`propagator_from_env` reads ``OTEL_PROPAGATORS`` (``tracecontext``, ``baggage``,
``jaeger``, ``none``) the way the OpenTelemetry SDK does, so a service that still speaks
Jaeger's ``uber-trace-id`` can be traced without the deprecated ``jaeger-client``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
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
    "MAX_TRACESTATE_LENGTH",
    "MAX_TRACESTATE_MEMBERS",
    "TRACEPARENT",
    "TRACESTATE",
    "Level2TraceState",
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

MAX_TRACESTATE_MEMBERS = 32
"""List members a ``tracestate`` may have (Trace Context §3.3.1.2)."""
MAX_TRACESTATE_LENGTH = 512
"""Characters of ``tracestate`` memlens propagates: the spec's floor (§3.3.1.5), documented
as the spec asks; longer ones are truncated by whole entries."""
# version "-" trace-id "-" parent-id "-" flags, then for versions above 00 optional "-" ...
_TRACEPARENT_RE = re.compile(
    r"(?P<version>[0-9a-f]{2})-(?P<trace_id>[0-9a-f]{32})-(?P<span_id>[0-9a-f]{16})"
    r"-(?P<flags>[0-9a-f]{2})(?P<rest>-.*)?"
)
# Level 2 §3.3.1.3.1: key = ( lcalpha / DIGIT ) 0*255 ( keychar ), keychar = lcalpha /
# DIGIT / "_" / "-" / "*" / "/" / "@" (Level 1's tenant@system split, with its 241 + 14
# character limits, is gone: "@" is one more key character)
_KEY_RE = re.compile(r"[a-z0-9][a-z0-9_\-*/@]{0,255}")
# §3.3.1.3.2: value = 0*255(chr) nblk-chr; chr = %x20 / nblk-chr; nblk-chr = %x21-2B /
# %x2D-3C / %x3E-7E (printable ASCII but "," and "=", not ending in a space)
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


class Level2TraceState(TraceState):
    """A TraceState holding members already checked against Trace Context Level 2.

    OpenTelemetry's own constructor re-checks every key against Level 1's
    ``tenant@system`` grammar and would drop keys Level 2 allows (``foo@``, a 250-character
    tenant); this one keeps them as given. Its ``add``/``update``/``delete`` are
    OpenTelemetry's and return a plain (Level 1-checked) TraceState."""

    def __init__(self, entries: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__()
        self._dict = dict(entries)


def _member(raw: str) -> tuple[str, str] | None:
    """One list member as (key, value); None when it is empty or invalid."""
    # §3.3.1.1: "Spaces and horizontal tabs surrounding list-members are ignored" (only
    # those two: a CR, LF or NBSP stays part of the member and fails the grammar below)
    member = raw.strip(" \t")
    key, sep, value = member.partition("=")
    # §3.3.1.3.1 Key / §3.3.1.3.2 Value: a member that does not match is one invalid entry
    if not sep or not _KEY_RE.fullmatch(key) or not _VALUE_RE.fullmatch(value):
        return None
    return key, value


def _truncated(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``pairs`` cut to :data:`MAX_TRACESTATE_LENGTH` characters as one header, as the spec
    truncates: whole entries, those over 128 characters first, then from the right."""
    # §3.3.1.5 tracestate Limits: "the vendor MUST truncate whole entries. Entries larger
    # than 128 characters long SHOULD be removed first. Then entries SHOULD be removed
    # starting from the end of tracestate."
    kept = list(pairs)
    length = sum(len(k) + 1 + len(v) for k, v in kept) + max(len(kept) - 1, 0)
    while length > MAX_TRACESTATE_LENGTH:
        large = [i for i, (k, v) in enumerate(kept) if len(k) + 1 + len(v) > 128]
        key, value = kept.pop(large[-1] if large else -1)
        length -= len(key) + 1 + len(value) + (1 if kept else 0)
    return kept


def parse_tracestate(values: Sequence[str]) -> Level2TraceState:
    """The ``tracestate`` header lines, combined, as a TraceState: what Trace Context
    Level 2 says to keep and propagate.

    - the lines are joined with commas in the order received (RFC 9110 §5.3);
    - empty and whitespace-only members are skipped, spaces and tabs around a member ignored;
    - a member whose key or value breaks the grammar is dropped, the others kept;
    - of a key given twice, the left-most entry (its most recent position) is kept;
    - a list of more than 32 members is invalid as a whole and gives an empty TraceState;
    - a result over 512 characters is truncated by whole entries, as the spec says.
    """
    # §3.3.1.1: multiple tracestate fields "MUST be combined into a single header"
    # (RFC 7230 §3.2.2 field order, now RFC 9110 §5.3: join with commas, order kept)
    members = [raw for raw in ",".join(values).split(",") if raw.strip(" \t")]
    # §3.3.1.2 list: "There can be a maximum of 32 list-members in a list". 33 are not a
    # list at all; Processing Model, "A traceparent is received": "If the tracestate header
    # cannot be parsed the vendor MAY discard the entire header" (no one member is at
    # fault, so there is none to drop alone)
    if len(members) > MAX_TRACESTATE_MEMBERS:
        return Level2TraceState()
    pairs: dict[str, str] = {}
    for raw in members:
        # same section: "Invalid tracestate entries MAY also be discarded": that entry only
        member = _member(raw)
        # §3.3.1.4 Combined Header Value: "Only one entry per key is allowed because the
        # entry represents the last position in the trace"; the left-most is the latest
        if member is not None and member[0] not in pairs:
            pairs[member[0]] = member[1]
    return Level2TraceState(_truncated(list(pairs.items())))


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
        state = parse_tracestate(state_headers) if state_headers else None
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
