"""memlens.tracing.records: code locations from current and deprecated attributes, and the
row a span is stored as."""

from __future__ import annotations

from memlens.tracing.records import SpanRecord, code_location_of, span_row


def test_code_location_prefers_current_attributes() -> None:
    assert code_location_of(
        {"code.file.path": "/new.py", "code.filepath": "/old.py", "code.lineno": "7"}
    ) == ("/new.py", 7, None)
    assert code_location_of({"code.lineno": "x"}) == (None, None, None)


def test_a_line_number_is_a_whole_number_from_one_however_sent() -> None:
    """The store's code index, the CLI waterfall and the trace view read lines one way."""
    for sent in (14, 14.0, "14", " 14 "):
        assert code_location_of({"code.lineno": sent})[1] == 14
    for refused in (0, -2, 0.5, "²", "1_4", True, 10**30, "1" * 30, float("nan"), None):
        assert code_location_of({"code.lineno": refused})[1] is None


def test_a_span_row_names_the_store_columns_in_order() -> None:
    span = SpanRecord(
        "ab" * 16,
        "cd" * 8,
        None,
        "GET",
        2,
        "svc",
        1,
        3,
        attributes={"code.filepath": "/a.py", "code.lineno": 4},
        resource={"service.name": "svc"},
    )
    row = span_row(span)
    assert row[0] == row.trace_id == "ab" * 16
    assert (row.code_path, row.code_line, row.code_function) == ("/a.py", 4, None)
    assert row.attributes == '{"code.filepath":"/a.py","code.lineno":4}'
    assert span_row(span, resource_json="{}").resource == "{}"
    assert row.events == "[]" and len(row) == 16
