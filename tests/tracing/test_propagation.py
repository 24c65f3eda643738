"""memlens.tracing.propagation against the W3C Trace Context spec and OpenTelemetry's own
TraceContextTextMapPropagator, over a corpus of valid, invalid and hostile headers."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from memlens.errors import UsageError
from memlens.tracing.propagation import (
    W3CTraceContextPropagator,
    parse_traceparent,
    propagator_from_env,
)

TID = "4bf92f3577b34da6a3ce929d0e0e4736"
SID = "00f067aa0ba902b7"
VALID = f"00-{TID}-{SID}-01"

# header value -> why the spec says to ignore it and start a new trace
INVALID: dict[str, str] = {
    "": "empty",
    "00": "too short",
    f"00-{TID}-{SID}": "no flags",
    f"00-{TID.upper()}-{SID}-01": "uppercase trace id",
    f"00-{TID}-{SID.upper()}-01": "uppercase parent id",
    f"00-{TID}-{SID}-0A": "uppercase flags",
    f"0A-{TID}-{SID}-01": "uppercase version",
    f"ff-{TID}-{SID}-01": "version ff is forbidden",
    f"00-{'0' * 32}-{SID}-01": "all-zero trace id",
    f"00-{TID}-{'0' * 16}-01": "all-zero parent id",
    f"00-{TID}-{SID}-01-extra": "extra field on version 00",
    f"00-{TID}-{SID}-01-": "trailing dash on version 00",
    f"00-{TID[:-1]}-{SID}-01": "trace id one digit short",
    f"00-{TID}0-{SID}-01": "trace id one digit long",
    f"00-{TID}-{SID[:-1]}-01": "parent id one digit short",
    f"00-{TID}-{SID}-1": "one-digit flags",
    f"00-{TID}-{SID}-001": "three-digit flags",
    f"00_{TID}_{SID}_01": "wrong delimiter",
    f"00-{TID[:-1]}g-{SID}-01": "non-hex digit",
    f"00-{TID}-{SID}-0x": "non-hex flags",
    f"0-0{TID}-{SID}-01": "one-digit version",
    f"00-{TID}-{SID}-01\x00": "NUL byte",
    f"00-{TID}-{SID}-01\n": "newline (header injection)",
    f"00-{TID}-{SID}-01\r\nx-evil: 1": "CRLF header injection",
    f"00-{TID}-{SID}-01,00-{TID}-{SID}-01": "two values joined by a comma",
    f"00-{TID}-{SID}-01;x": "junk after the flags",
    "00-" + "a" * 10_000: "very long garbage",
    f"00-{'٣' * 32}-{SID}-01": "non-ASCII digits",
    f"cc-{TID}-{SID}-01.": "future version: char at 55 is not a dash",
    f"cc-{TID}-{SID}": "future version shorter than 55 chars",
}

OTEL_ACCEPTS = {f"00-{TID}-{SID}-01\n"}
"""Invalid headers OpenTelemetry's TraceContextTextMapPropagator accepts (memlens does not)."""

# header value -> (trace id, parent id, flags memlens keeps)
VALID_CASES: dict[str, tuple[str, str, int]] = {
    VALID: (TID, SID, 1),
    f"00-{TID}-{SID}-00": (TID, SID, 0),
    f" \t00-{TID}-{SID}-01 \t": (TID, SID, 1),
    f"00-{TID}-{SID}-03": (TID, SID, 3),
    f"cc-{TID}-{SID}-01": (TID, SID, 1),
    f"cc-{TID}-{SID}-01-what-the-future-will-be-like": (TID, SID, 1),
    f"00-{'f' * 32}-{'f' * 16}-01": ("f" * 32, "f" * 16, 1),
}


def _extract(propagator: object, carrier: dict[str, str]) -> trace.SpanContext:
    context = propagator.extract(carrier)  # type: ignore[attr-defined]
    return trace.get_current_span(context).get_span_context()


@pytest.mark.parametrize("header", list(INVALID), ids=list(INVALID.values()))
def test_invalid_traceparent_starts_a_new_trace_like_opentelemetry(header: str) -> None:
    assert parse_traceparent(header) is None
    ours = _extract(W3CTraceContextPropagator(), {"traceparent": header, "tracestate": "a=b"})
    theirs = _extract(TraceContextTextMapPropagator(), {"traceparent": header})
    assert not ours.is_valid
    # OpenTelemetry's regex ends in ``$``, which also matches before a final newline
    assert theirs.is_valid == (header in OTEL_ACCEPTS)


@pytest.mark.parametrize("header", list(VALID_CASES))
def test_valid_traceparent_matches_opentelemetry(header: str) -> None:
    trace_id, span_id, flags = VALID_CASES[header]
    parsed = parse_traceparent(header)
    assert parsed is not None
    assert (parsed.trace_id, parsed.span_id, parsed.flags) == (trace_id, span_id, flags)
    ours = _extract(W3CTraceContextPropagator(), {"traceparent": header})
    theirs = _extract(TraceContextTextMapPropagator(), {"traceparent": header})
    assert ours.is_remote
    assert (ours.trace_id, ours.span_id) == (theirs.trace_id, theirs.span_id)
    assert ours.trace_id == int(trace_id, 16)
    assert ours.trace_flags.sampled == bool(flags & 1)


def test_unknown_flag_bits_are_not_propagated_where_opentelemetry_passes_them_on() -> None:
    header = f"00-{TID}-{SID}-ff"
    ours = W3CTraceContextPropagator()
    out: dict[str, str] = {}
    ours.inject(out, ours.extract({"traceparent": header}))
    assert out["traceparent"] == f"00-{TID}-{SID}-03"
    theirs = TraceContextTextMapPropagator()
    out_otel: dict[str, str] = {}
    theirs.inject(out_otel, theirs.extract({"traceparent": header}))
    assert out_otel["traceparent"].endswith("-ff")  # the difference memlens exists to fix


def test_duplicate_traceparent_headers_start_a_new_trace() -> None:
    carrier = {"traceparent": [VALID, f"00-{'1' * 32}-{SID}-01"]}
    getter = _ListGetter()
    ctx = W3CTraceContextPropagator().extract(carrier, getter=getter)
    assert not trace.get_current_span(ctx).get_span_context().is_valid


class _ListGetter(Getter[dict[str, list[str]]]):
    def get(self, carrier: dict[str, list[str]], key: str) -> list[str] | None:
        return carrier.get(key)

    def keys(self, carrier: dict[str, list[str]]) -> list[str]:
        return list(carrier)


@pytest.mark.parametrize(
    ("tracestate", "expected"),
    [
        ("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7", [("congo", "t61rcWkgMzE"), ("rojo", SID)]),
        ("a=1, ,b=2", [("a", "1"), ("b", "2")]),
        ("vendor@tenant=x", [("vendor@tenant", "x")]),
        ("a=1,a=2", []),  # duplicate key
        ("A=1", []),  # uppercase key
        ("a=", []),  # empty value
        ("a=b=c", []),  # '=' in the value
        ("a=x\x00", []),  # control character
        (",".join(f"k{i}=v" for i in range(33)), []),  # over 32 members
        ("a=" + "x" * 600, []),  # over 512 characters
    ],
)
def test_tracestate_is_kept_only_when_valid(
    tracestate: str, expected: list[tuple[str, str]]
) -> None:
    ctx = W3CTraceContextPropagator().extract({"traceparent": VALID, "tracestate": tracestate})
    span_context = trace.get_current_span(ctx).get_span_context()
    assert span_context.is_valid  # a bad tracestate never invalidates traceparent
    assert list(span_context.trace_state.items()) == expected
    theirs = TraceContextTextMapPropagator().extract(
        {"traceparent": VALID, "tracestate": tracestate}
    )
    assert list(trace.get_current_span(theirs).get_span_context().trace_state.items()) == expected


def test_inject_round_trips_traceparent_and_tracestate() -> None:
    propagator = W3CTraceContextPropagator()
    ctx = propagator.extract({"traceparent": VALID, "tracestate": "rojo=1,congo=2"})
    out: dict[str, str] = {}
    propagator.inject(out, ctx)
    assert out == {"traceparent": VALID, "tracestate": "rojo=1,congo=2"}
    empty: dict[str, str] = {}
    propagator.inject(empty, Context())
    assert empty == {}


def test_otel_propagators_selects_jaeger_uber_trace_id() -> None:
    propagator = propagator_from_env({"OTEL_PROPAGATORS": "tracecontext,jaeger"})
    ctx = propagator.extract({"uber-trace-id": f"{TID}:{SID}:0:1"})
    span_context = trace.get_current_span(ctx).get_span_context()
    assert (span_context.trace_id, span_context.span_id) == (int(TID, 16), int(SID, 16))
    out: dict[str, str] = {}
    propagator.inject(out, ctx)
    assert out["traceparent"] == VALID
    assert out["uber-trace-id"].startswith(f"{TID}:{SID}:")
    assert propagator.fields == {"traceparent", "tracestate", "uber-trace-id"}


def test_otel_propagators_default_and_none_and_unknown() -> None:
    assert "baggage" in propagator_from_env({}).fields
    assert propagator_from_env({"OTEL_PROPAGATORS": "none"}).fields == set()
    with pytest.raises(UsageError, match="b3"):
        propagator_from_env({"OTEL_PROPAGATORS": "tracecontext,b3"})
