"""memlens.tracing.otlp: OTLP JSON ids, root spans, bounded gzip."""

from __future__ import annotations

import gzip
import json

import pytest

from memlens.tracing.otlp import (
    JSON,
    BadPayloadError,
    PayloadTooLargeError,
    decode_request,
    gunzip_bounded,
    records_from_request,
)


def _body(parent: str) -> bytes:
    span = {"traceId": "ab" * 16, "spanId": "cd" * 8, "parentSpanId": parent, "name": "x"}
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()


@pytest.mark.parametrize("parent", ["", "0000000000000000"])
def test_empty_or_all_zero_parent_is_a_root_span(parent: str) -> None:
    """Regression: the benchmark's first request (a zero parent id) was answered 400."""
    [record] = records_from_request(decode_request(_body(parent), JSON))
    assert record.parent_span_id is None
    assert record.service == "unknown_service"


def test_parent_of_the_wrong_length_is_bad_data() -> None:
    with pytest.raises(BadPayloadError, match="parentSpanId"):
        records_from_request(decode_request(_body("abcd"), JSON))


def test_gunzip_is_bounded() -> None:
    assert gunzip_bounded(gzip.compress(b"x" * 100), 100) == b"x" * 100
    with pytest.raises(PayloadTooLargeError):
        gunzip_bounded(gzip.compress(b"x" * 101), 100)
    with pytest.raises(BadPayloadError):
        gunzip_bounded(b"not gzip", 100)
