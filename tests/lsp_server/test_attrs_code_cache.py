"""attrs's generated methods from a code cache (memlens/lsp_server/attrs_code_cache.py):
classes behave as attrs makes them, a second start compiles nothing, a corrupt cache file
is rebuilt, and attrs is left as it was."""

from __future__ import annotations

import marshal
from pathlib import Path

import attr._make
import attrs

from memlens.lsp_server.attrs_code_cache import cached_attrs_methods


def _define() -> type:
    @attrs.define
    class Point:
        x: int
        y: int = 0

    return Point


def _check(point_class: type) -> None:
    point = point_class(1, y=2)
    assert point == point_class(1, 2) and point != point_class(2, 2)
    assert repr(point) == "Point(x=1, y=2)"


def test_a_second_start_compiles_nothing_and_attrs_is_restored(tmp_path: Path) -> None:
    original = attr._make._compile_and_eval
    path = tmp_path / "codes.marshal"
    with cached_attrs_methods(path):
        _check(_define())
    assert attr._make._compile_and_eval is original
    saved = path.read_bytes()
    assert marshal.loads(saved)  # the generated methods were kept
    with cached_attrs_methods(path):
        _check(_define())
    assert path.read_bytes() == saved  # nothing new to add


def test_a_corrupt_cache_file_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "codes.marshal"
    for corrupt in (b"", b"\x00garbage", marshal.dumps({"not": "code"})):
        path.write_bytes(corrupt)
        with cached_attrs_methods(path):
            _check(_define())
        assert isinstance(marshal.loads(path.read_bytes()), dict)
        assert path.read_bytes() != corrupt


def test_an_unwritable_cache_folder_only_costs_speed(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with cached_attrs_methods(blocker / "codes.marshal"):  # its folder cannot be made
        _check(_define())
