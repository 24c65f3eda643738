"""memlens.tracing.otlp: OTLP JSON ids, root spans, bounded gzip, and the collector's
protobuf-to-row fast path against its reference."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from memlens.tracing.otlp import (
    JSON,
    BadPayloadError,
    PayloadTooLargeError,
    decode_request,
    gunzip_bounded,
    records_from_request,
    span_rows,
)
from memlens.tracing.records import span_row


def _body(parent: str) -> bytes:
    span = {"traceId": "ab" * 16, "spanId": "cd" * 8, "parentSpanId": parent, "name": "x"}
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()


@pytest.mark.parametrize("parent", ["", "0000000000000000", "00000000"])
def test_empty_or_all_zero_parent_is_a_root_span(parent: str) -> None:
    """Regression: the benchmark's first request (a zero parent id) was answered 400."""
    request = decode_request(_body(parent), JSON)
    [record] = records_from_request(request)
    assert record.parent_span_id is None
    assert record.service == "unknown_service"
    [row] = span_rows(request)
    assert row == span_row(record)


def test_parent_of_the_wrong_length_is_bad_data() -> None:
    with pytest.raises(BadPayloadError, match="parentSpanId"):
        records_from_request(decode_request(_body("abcd"), JSON))


def test_gunzip_is_bounded() -> None:
    assert gunzip_bounded(gzip.compress(b"x" * 100), 100) == b"x" * 100
    with pytest.raises(PayloadTooLargeError):
        gunzip_bounded(gzip.compress(b"x" * 101), 100)
    with pytest.raises(BadPayloadError):
        gunzip_bounded(b"not gzip", 100)


def _kv(key: str, **value: Any) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def test_span_rows_match_the_reference_for_every_value_kind() -> None:
    values = [
        _kv("s", string_value='naïve "quoted" \n'),
        _kv("i", int_value=-7),
        _kv("b", bool_value=True),
        _kv("d", double_value=0.25),
        _kv("x", bytes_value=b"\x01\xff"),
        _kv("a", array_value=ArrayValue(values=[AnyValue(int_value=1), AnyValue()])),
        _kv("k", kvlist_value=KeyValueList(values=[_kv("n", string_value="v")])),
        _kv("empty"),
        _kv("blank", string_value=""),
    ]
    located = [_kv("code.filepath", string_value="/old.py"), _kv("code.lineno", int_value=4)]
    current = [
        _kv("code.file.path", string_value="/new.py"),
        _kv("code.line.number", string_value="12"),
        _kv("code.function.name", string_value="f"),
        _kv("code.filepath", string_value="/old.py"),
    ]
    spans = [
        Span(
            trace_id=bytes(range(1, 17)),
            span_id=bytes(range(1, 9)),
            parent_span_id=parent,
            name=f"s{i}",
            kind=Span.SpanKind.ValueType(i % 6),
            start_time_unix_nano=1_000 + i,
            end_time_unix_nano=end,
            attributes=attributes,
            events=events,
            status=Status(code=Status.StatusCode.ValueType(i % 3), message="m" * i),
        )
        for i, (parent, end, attributes, events) in enumerate(
            [
                (b"", 5_000, values, []),
                (bytes(8), 10, located, [Span.Event(name="e", time_unix_nano=9)]),
                (bytes(range(8, 16)), 7_000, current, [Span.Event(attributes=values)]),
            ]
        )
    ]
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[_kv("service.name", string_value="api")]),
                scope_spans=[ScopeSpans(spans=spans)],
            ),
            ResourceSpans(scope_spans=[ScopeSpans(spans=spans[:1])]),
        ]
    )
    fast = span_rows(request)
    reference = [span_row(r) for r in records_from_request(request)]
    assert fast == reference
    assert [(row[5], row[7], row[10:13]) for row in fast] == [
        ("api", 5_000, (None, None, None)),
        ("api", 1_001, ("/old.py", 4, None)),  # end before start is clamped to the start
        ("api", 7_000, ("/new.py", 12, "f")),
        ("unknown_service", 5_000, (None, None, None)),
    ]


@pytest.mark.parametrize(
    ("field", "raw"),
    [("trace_id", bytes(16)), ("trace_id", b"\x01" * 15), ("span_id", b""), ("parent", b"\x01")],
)
def test_span_rows_reject_the_ids_the_reference_rejects(field: str, raw: bytes) -> None:
    ids = {"trace_id": b"\x01" * 16, "span_id": b"\x02" * 8, "parent": b""}
    ids[field] = raw
    span = Span(
        trace_id=ids["trace_id"], span_id=ids["span_id"], parent_span_id=ids["parent"], name="x"
    )
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]
    )
    with pytest.raises(BadPayloadError) as fast:
        span_rows(request)
    with pytest.raises(BadPayloadError) as reference:
        records_from_request(request)
    assert str(fast.value) == str(reference.value)


@pytest.mark.parametrize("field", ["start_time_unix_nano", "end_time_unix_nano"])
def test_times_past_2262_are_bad_data_in_both_paths(field: str) -> None:
    """Bad input tried: a start or end of 2**63 ns (SQLite holds up to 2**63 - 1)."""
    span = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="x", **{field: 2**63})
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]
    )
    with pytest.raises(BadPayloadError, match="past 9223372036854775807") as fast:
        span_rows(request)
    with pytest.raises(BadPayloadError) as reference:
        records_from_request(request)
    assert str(fast.value) == str(reference.value)
    span = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="x", **{field: 2**63 - 1})
    request.resource_spans[0].scope_spans[0].spans[0].CopyFrom(span)
    assert len(span_rows(request)) == 1
