"""OTLP/HTTP trace payloads (protobuf and JSON) to :class:`SpanRecord` lists and back.

The OTLP JSON encoding differs from protobuf's canonical JSON in one way that matters here:
``traceId``/``spanId``/``parentSpanId`` are hex strings, not base64. Unknown fields are
ignored, as OTLP asks of receivers.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from memlens.errors import MemlensError
from memlens.tracing.records import SpanRecord, SpanRow, code_location_of, encode_json

__all__ = [
    "JSON",
    "PROTOBUF",
    "BadPayloadError",
    "PayloadTooLargeError",
    "attributes_of",
    "check_times",
    "decode_request",
    "encode_response",
    "gunzip_bounded",
    "parse_message",
    "records_from_request",
    "span_rows",
]

_M = TypeVar("_M", bound=Message)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")
_quote: Callable[[str], str] = json.encoder.encode_basestring
"""A JSON string literal, non-ASCII kept (what ``encode_json`` writes for strings); C-coded."""


class BadPayloadError(MemlensError):
    """An OTLP request body that cannot be decoded (the collector answers 400)."""


class PayloadTooLargeError(MemlensError):
    """An OTLP request body, or its gzip expansion, over the size limit (answered 413)."""


def gunzip_bounded(body: bytes, limit: int) -> bytes:
    """Decompress a gzip body, refusing to expand past ``limit`` bytes (no zip bombs)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadPayloadError(f"gzip body is corrupt: {exc}") from exc
    if len(out) > limit:
        raise PayloadTooLargeError(f"gzip body expands past the {limit}-byte limit")
    if not inflater.eof:
        raise BadPayloadError("gzip body is truncated")
    return out


def _hex_ids_to_base64(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError as exc:
                    raise BadPayloadError(f"{key} {value[:40]!r} is not hex") from exc
            else:
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)


def parse_message(body: bytes, content_type: str, message: _M) -> _M:
    """Fill ``message`` (an OTLP ``Export*ServiceRequest``) from protobuf or OTLP JSON."""
    if content_type == PROTOBUF:
        try:
            message.ParseFromString(body)
        except (DecodeError, RecursionError) as exc:
            raise BadPayloadError(f"protobuf body does not decode: {exc}") from exc
        return message
    try:
        document = json.loads(body)
        if not isinstance(document, dict):
            raise BadPayloadError("JSON body is not an object")
        _hex_ids_to_base64(document)
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except (ValueError, json_format.ParseError, RecursionError, TypeError) as exc:
        raise BadPayloadError(f"JSON body is not an OTLP {type(message).__name__}: {exc}") from exc
    return message


def decode_request(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    """Parse an ``ExportTraceServiceRequest`` in protobuf or OTLP JSON."""
    return parse_message(body, content_type, ExportTraceServiceRequest())


def encode_response(content_type: str) -> bytes:
    """An empty (full success) ``Export{Trace,Metrics}ServiceResponse`` in the request's
    encoding (both are the empty message)."""
    if content_type == PROTOBUF:
        body: bytes = ExportTraceServiceResponse().SerializeToString()
        return body
    return b"{}"


def _value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which == "string_value":
        return v.string_value
    if which is None:
        return None
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, which)


def attributes_of(kvs: Any) -> dict[str, Any]:
    """OTLP ``KeyValue`` list to a dict (bytes as hex, arrays as lists, kvlists as dicts)."""
    out: dict[str, Any] = {}
    for kv in kvs:
        value = kv.value
        which = value.WhichOneof("value")
        if which == "string_value":
            out[kv.key] = value.string_value
        elif which == "int_value":
            out[kv.key] = value.int_value
        else:
            out[kv.key] = _value(value)
    return out


def _check_id(raw: bytes, size: int, what: str, optional: bool = False) -> str | None:
    if optional and not raw.strip(b"\0"):
        return None  # an empty or all-zero parent id means a root span
    if len(raw) != size or raw == bytes(size):
        _bad_id(raw, size, what)
    return raw.hex()


def records_from_request(request: ExportTraceServiceRequest) -> list[SpanRecord]:
    """Flatten resource → scope → spans into records; 400-worthy ids raise BadPayloadError."""
    records: list[SpanRecord] = []
    for resource_spans in request.resource_spans:
        resource = attributes_of(resource_spans.resource.attributes)
        service = str(resource.get("service.name") or "unknown_service")
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                trace_id = _check_id(span.trace_id, 16, "traceId")
                span_id = _check_id(span.span_id, 8, "spanId")
                assert trace_id is not None and span_id is not None
                check_times(span.start_time_unix_nano, span.end_time_unix_nano)
                records.append(
                    SpanRecord(
                        trace_id=trace_id,
                        span_id=span_id,
                        parent_span_id=_check_id(
                            span.parent_span_id, 8, "parentSpanId", optional=True
                        ),
                        name=span.name,
                        kind=int(span.kind),
                        service=service,
                        start_ns=int(span.start_time_unix_nano),
                        end_ns=max(int(span.end_time_unix_nano), int(span.start_time_unix_nano)),
                        status_code=int(span.status.code),
                        status_message=span.status.message,
                        attributes=attributes_of(span.attributes),
                        resource=resource,
                        events=[
                            {
                                "name": e.name,
                                "time_ns": int(e.time_unix_nano),
                                "attributes": attributes_of(e.attributes),
                            }
                            for e in span.events
                        ],
                    )
                )
    return records


def _attrs_json(kvs: Any) -> tuple[str, dict[str, Any] | None]:
    """The JSON object text of an attribute list (as ``encode_json(attributes_of(kvs))`` writes
    it, bar repeated keys, which are kept; readers take the last) and its ``code.*``
    attributes."""
    parts = []
    code: dict[str, Any] | None = None
    for kv in kvs:
        key = kv.key
        value = kv.value
        v: Any = value.string_value
        if v:  # most attributes are strings: read first, as WhichOneof costs as much again
            text = _quote(v)
        elif value.WhichOneof("value") == "int_value":
            v = value.int_value
            text = str(v)
        else:  # an empty string included
            v = _value(value)
            text = encode_json(v)
        parts.append(f"{_quote(key)}:{text}")
        if key.startswith("code."):
            if code is None:
                code = {}
            code[key] = v
    return "{" + ",".join(parts) + "}", code


MAX_NS = 2**63 - 1
"""Latest time the store holds (SQLite integers are signed 64-bit): Unix nanoseconds, the
year 2262. OTLP times are unsigned 64-bit; later ones are bad data."""


def check_times(*times_ns: int) -> None:
    """BadPayloadError when a time (Unix nanoseconds) is past :data:`MAX_NS`."""
    for time_ns in times_ns:
        if time_ns > MAX_NS:
            raise BadPayloadError(f"time {time_ns} ns is past {MAX_NS} (the year 2262)")


def _bad_id(raw: bytes, size: int, what: str) -> NoReturn:
    raise BadPayloadError(f"{what} must be {size} bytes and not all zero, got {raw.hex()!r}")


_ZERO_TRACE, _ZERO_SPAN = bytes(16), bytes(8)
_NO_LOCATION = (None, None, None)


def span_rows(request: ExportTraceServiceRequest) -> list[SpanRow]:
    """The store rows of every span in a request, straight from protobuf: the collector's
    fast path. :func:`records_from_request` followed by :func:`~memlens.tracing.records.span_row`
    is the reference; both raise BadPayloadError for the same ids."""
    rows: list[SpanRow] = []
    for resource_spans in request.resource_spans:
        resource = attributes_of(resource_spans.resource.attributes)
        service = str(resource.get("service.name") or "unknown_service")
        resource_json = encode_json(resource)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                trace_id, span_id, parent = span.trace_id, span.span_id, span.parent_span_id
                if len(trace_id) != 16 or trace_id == _ZERO_TRACE:
                    _bad_id(trace_id, 16, "traceId")
                if len(span_id) != 8 or span_id == _ZERO_SPAN:
                    _bad_id(span_id, 8, "spanId")
                if parent and (len(parent) != 8 or parent == _ZERO_SPAN) and parent.strip(b"\0"):
                    _bad_id(parent, 8, "parentSpanId")
                attributes, code = _attrs_json(span.attributes)
                start, end = span.start_time_unix_nano, span.end_time_unix_nano
                check_times(start, end)
                status = span.status
                rows.append(
                    SpanRow(
                        trace_id.hex(),
                        span_id.hex(),
                        # valid by now, or all zeros (of any length): a root span
                        parent.hex() if len(parent) == 8 and parent != _ZERO_SPAN else None,
                        span.name,
                        span.kind,
                        service,
                        start,
                        max(end, start),
                        status.code,
                        status.message,
                        *(code_location_of(code) if code else _NO_LOCATION),
                        attributes,
                        resource_json,
                        encode_json(
                            [
                                {
                                    "name": e.name,
                                    "time_ns": e.time_unix_nano,
                                    "attributes": attributes_of(e.attributes),
                                }
                                for e in span.events
                            ]
                        )
                        if span.events
                        else "[]",
                    )
                )
    return rows
