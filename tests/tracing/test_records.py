"""memlens.tracing.records: code locations from current and deprecated attributes."""

from __future__ import annotations

from memlens.tracing.records import code_location_of


def test_code_location_prefers_current_attributes() -> None:
    assert code_location_of(
        {"code.file.path": "/new.py", "code.filepath": "/old.py", "code.lineno": "7"}
    ) == ("/new.py", 7, None)
    assert code_location_of({"code.lineno": "x"}) == (None, None, None)
