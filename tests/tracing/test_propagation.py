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


Pairs = list[tuple[str, str]]

ALL_KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-*/@"
ALL_VALUE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ",=")

# one table per rule of Trace Context Level 2 §3.3: header lines -> (what memlens keeps,
# what OpenTelemetry's TraceContextTextMapPropagator keeps). Where the two differ, the
# difference is the point of the row (docs/tracing.md lists them).
KEY_RULES: dict[str, tuple[list[str], Pairs, Pairs]] = {
    # §3.3.1.3.1 key = ( lcalpha / DIGIT ) 0*255 ( keychar )
    "lowercase key": (["foo=1"], [("foo", "1")], [("foo", "1")]),
    "key starting with a digit": (["1foo=1"], [("1foo", "1")], []),
    "every key character": (
        [f"{ALL_KEY_CHARS}=1"],
        [(ALL_KEY_CHARS, "1")],
        [],
    ),
    "multi-tenant key tenant@system": (
        ["fw529a3039@dt=x,bar=2"],
        [("fw529a3039@dt", "x"), ("bar", "2")],
        [("fw529a3039@dt", "x"), ("bar", "2")],
    ),
    "key ending in @ (Level 2: @ is a key character)": (
        ["foo@=1,bar=2"],
        [("foo@", "1"), ("bar", "2")],
        [],
    ),
    "two @ in a key": (
        ["foo@bar@baz=1,bar=2"],
        [("foo@bar@baz", "1"), ("bar", "2")],
        [],
    ),
    "tenant of 250 characters": (
        ["t" * 250 + "@v=1,bar=2"],
        [("t" * 250 + "@v", "1"), ("bar", "2")],
        [],
    ),
    "system part of 20 characters": (
        ["t@" + "v" * 20 + "=1,bar=2"],
        [("t@" + "v" * 20, "1"), ("bar", "2")],
        [],
    ),
    "key of 256 characters (the limit)": (
        ["z" * 256 + "=1,bar=2"],
        [("z" * 256, "1"), ("bar", "2")],
        [("z" * 256, "1"), ("bar", "2")],
    ),
    "key of 257 characters dropped alone": (
        ["foo=1", "z" * 257 + "=1"],
        [("foo", "1")],
        [],
    ),
    "key starting with @ dropped alone": (["@foo=1,bar=2"], [("bar", "2")], []),
    "uppercase key dropped alone": (["FOO=1,bar=2"], [("bar", "2")], []),
    "key with a dot dropped alone": (["foo.bar=1,bar=2"], [("bar", "2")], []),
    "key with a space before = dropped alone": (["foo =1,bar=2"], [("bar", "2")], []),
    "empty key dropped alone": (["=1,bar=2"], [("bar", "2")], []),
    "non-ASCII key dropped alone": (["föo=1,bar=2"], [("bar", "2")], []),
    "member without = dropped alone": (["foo,bar=2"], [("bar", "2")], []),
}

VALUE_RULES: dict[str, tuple[list[str], Pairs, Pairs]] = {
    # §3.3.1.3.2 value = 0*255(chr) nblk-chr
    "every value character": (
        [f"foo={ALL_VALUE_CHARS}"],
        [("foo", ALL_VALUE_CHARS)],
        [("foo", ALL_VALUE_CHARS)],
    ),
    "leading spaces are part of the value": (["foo=  1"], [("foo", "  1")], [("foo", "  1")]),
    "value of 256 characters (the limit)": (
        ["foo=" + "v" * 256],
        [("foo", "v" * 256)],
        [("foo", "v" * 256)],
    ),
    "value of 257 characters dropped alone": (["foo=" + "v" * 257 + ",bar=2"], [("bar", "2")], []),
    "empty value dropped alone": (["foo=,bar=3"], [("bar", "3")], []),
    "= in the value dropped alone": (["foo=bar=baz,bar=2"], [("bar", "2")], []),
    "control character dropped alone": (["foo=x\x00,bar=2"], [("bar", "2")], []),
    "tab inside the value dropped alone": (["foo=a\tb,bar=2"], [("bar", "2")], []),
    "non-ASCII value dropped alone": (["foo=é,bar=2"], [("bar", "2")], []),
    "CR LF (header injection) dropped alone": (["foo=1\r\nx-evil: 1,bar=2"], [("bar", "2")], []),
}

WHITESPACE_RULES: dict[str, tuple[list[str], Pairs, Pairs]] = {
    # §3.3.1.1 "Spaces and horizontal tabs surrounding list-members are ignored" and
    # "Empty and whitespace-only list members are allowed"
    "spaces and tabs around members": (
        ["foo=1 \t , \t bar=2, \t baz=3"],
        [("foo", "1"), ("bar", "2"), ("baz", "3")],
        [("foo", "1"), ("bar", "2"), ("baz", "3")],
    ),
    "tabs only": (
        ["\tfoo=1\t,\tbar=2\t"],
        [("foo", "1"), ("bar", "2")],
        [("foo", "1"), ("bar", "2")],
    ),
    "empty and blank members": (
        [",foo=1,, ,\t,bar=2,"],
        [("foo", "1"), ("bar", "2")],
        [("foo", "1"), ("bar", "2")],
    ),
    "empty header": ([""], [], []),
    "blank header": ([" \t "], [], []),
    "vertical tab is not optional whitespace": (["\vfoo=1,bar=2"], [("bar", "2")], []),
    "no-break space is not optional whitespace": (["foo=1\u00a0,bar=2"], [("bar", "2")], []),
}

DUPLICATE_RULES: dict[str, tuple[list[str], Pairs, Pairs]] = {
    # §3.3.1.4 "Only one entry per key is allowed": the left-most (latest position) stays
    "same key and value twice": (["foo=1,foo=1"], [("foo", "1")], []),
    "same key, two values": (["foo=1,foo=2"], [("foo", "1")], []),
    "duplicate across header lines": (["foo=1", "foo=2"], [("foo", "1")], []),
    "duplicate keeps its neighbours": (
        ["rojo=1,congo=2,rojo=3,baz=4"],
        [("rojo", "1"), ("congo", "2"), ("baz", "4")],
        [],
    ),
}

MULTIPLE_LINE_RULES: dict[str, tuple[list[str], Pairs, Pairs]] = {
    # §3.3.1.1: several tracestate fields "MUST be combined into a single header"
    # (RFC 9110 §5.3: in order, joined by commas)
    "three lines in order": (
        ["foo=1,bar=2", "rojo=1,congo=2", "baz=3"],
        [("foo", "1"), ("bar", "2"), ("rojo", "1"), ("congo", "2"), ("baz", "3")],
        [("foo", "1"), ("bar", "2"), ("rojo", "1"), ("congo", "2"), ("baz", "3")],
    ),
    "empty line first": (["", "foo=1"], [("foo", "1")], [("foo", "1")]),
    "empty line last": (["foo=1", ""], [("foo", "1")], [("foo", "1")]),
    "an invalid line's members dropped, the other line kept": (
        ["foo=1", "BAR=2"],
        [("foo", "1")],
        [],
    ),
}


def _members(n: int) -> list[str]:
    return [f"bar{i:02d}={i:02d}" for i in range(1, n + 1)]


LIMIT_RULES: dict[str, tuple[list[str], Pairs, Pairs]] = {
    # §3.3.1.2 "There can be a maximum of 32 list-members in a list"
    "32 members over four lines": (
        [",".join(_members(32)[i : i + 10]) for i in range(0, 32, 10)],
        [(m[:5], m[6:]) for m in _members(32)],
        [(m[:5], m[6:]) for m in _members(32)],
    ),
    "33 members: not a list, the header is discarded": (
        [",".join(_members(33))],
        [],
        [],
    ),
    "33 members over two lines": ([",".join(_members(20)), ",".join(_members(33)[20:])], [], []),
    "empty members do not count": (
        [",".join(_members(32)) + ",,, ,"],
        [(m[:5], m[6:]) for m in _members(32)],
        [(m[:5], m[6:]) for m in _members(32)],
    ),
    # §3.3.1.5: "SHOULD propagate at least 512 characters"; past that, whole entries go,
    # those over 128 characters first, then from the end
    "512 characters kept whole": (
        ["a=" + "x" * 253 + ",b=" + "y" * 254],
        [("a", "x" * 253), ("b", "y" * 254)],
        [("a", "x" * 253), ("b", "y" * 254)],
    ),
    "513 characters: the right-most entry over 128 characters goes": (
        ["a=" + "x" * 200 + ",s=1,b=" + "y" * 200 + ",t=2,c=" + "z" * 100],
        [("a", "x" * 200), ("s", "1"), ("t", "2"), ("c", "z" * 100)],
        [("a", "x" * 200), ("s", "1"), ("b", "y" * 200), ("t", "2"), ("c", "z" * 100)],
    ),
    "no entry over 128 characters: entries go from the end": (
        [",".join(f"k{i:02d}=" + "v" * 100 for i in range(6))],
        [(f"k{i:02d}", "v" * 100) for i in range(4)],
        [(f"k{i:02d}", "v" * 100) for i in range(6)],
    ),
}

RULES = {
    **KEY_RULES,
    **VALUE_RULES,
    **WHITESPACE_RULES,
    **DUPLICATE_RULES,
    **MULTIPLE_LINE_RULES,
    **LIMIT_RULES,
}


def _state_of(propagator: object, lines: list[str]) -> Pairs:
    carrier = {"traceparent": [VALID], "tracestate": lines}
    ctx = propagator.extract(carrier, getter=_ListGetter())  # type: ignore[attr-defined]
    span_context = trace.get_current_span(ctx).get_span_context()
    assert span_context.is_valid  # a bad tracestate never invalidates traceparent
    return list(span_context.trace_state.items())


@pytest.mark.parametrize("rule", list(RULES))
def test_tracestate_rule_keeps_what_level_2_says_to_keep(rule: str) -> None:
    lines, ours, theirs = RULES[rule]
    assert _state_of(W3CTraceContextPropagator(), lines) == ours
    assert _state_of(TraceContextTextMapPropagator(), lines) == theirs


@pytest.mark.parametrize(
    ("tracestate", "expected"),
    [
        ("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7", [("congo", "t61rcWkgMzE"), ("rojo", SID)]),
        ("a=1, ,b=2", [("a", "1"), ("b", "2")]),
        ("vendor@tenant=x", [("vendor@tenant", "x")]),
        ("A=1", []),  # uppercase key
        ("a=", []),  # empty value
        ("a=b=c", []),  # '=' in the value
        ("a=x\x00", []),  # control character
        (",".join(f"k{i}=v" for i in range(33)), []),  # over 32 members
        ("a=" + "x" * 600, []),  # value over 256 characters
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


def test_duplicate_key_keeps_the_first_entry_where_opentelemetry_drops_the_header() -> None:
    # was ("a=1,a=2", []) above: Level 2 lets the duplicate go, not the whole header
    ctx = W3CTraceContextPropagator().extract({"traceparent": VALID, "tracestate": "a=1,a=2"})
    assert list(trace.get_current_span(ctx).get_span_context().trace_state.items()) == [("a", "1")]
    theirs = TraceContextTextMapPropagator().extract(
        {"traceparent": VALID, "tracestate": "a=1,a=2"}
    )
    assert list(trace.get_current_span(theirs).get_span_context().trace_state.items()) == []


def test_tracestate_is_not_read_without_a_valid_traceparent() -> None:
    # §3.3: "If the vendor failed to parse traceparent, it MUST NOT attempt to parse tracestate"
    carrier = {"traceparent": "00-bad", "tracestate": "foo=1"}
    ctx = W3CTraceContextPropagator().extract(carrier)
    assert not trace.get_current_span(ctx).get_span_context().is_valid


def test_level_2_keys_survive_inject() -> None:
    propagator = W3CTraceContextPropagator()
    ctx = propagator.extract({"traceparent": VALID, "tracestate": "foo@=1, 1bar=2,foo@=3"})
    out: dict[str, str] = {}
    propagator.inject(out, ctx)
    assert out["tracestate"] == "foo@=1,1bar=2"


def test_an_empty_tracestate_is_accepted_and_not_sent_on() -> None:
    # §3.3.1.1 "Vendors MUST accept empty tracestate headers but SHOULD avoid sending them"
    propagator = W3CTraceContextPropagator()
    ctx = propagator.extract({"traceparent": VALID, "tracestate": " , "})
    out: dict[str, str] = {}
    propagator.inject(out, ctx)
    assert out == {"traceparent": VALID}


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
