"""The methods attrs generates for the LSP types, compiled once per installation instead
of at every start of the server.

``lsprotocol.types`` defines some 550 attrs classes; attrs writes each one's ``__init__``,
``__repr__``, ``__eq__``… as source text and compiles it, which is most of the half second
importing it takes. While the server imports pygls and lsprotocol, attrs's compile step
looks the code object up in a marshal file under the memlens cache folder, keyed by the
generated text itself (so another attrs or lsprotocol version simply misses), and the
file gains what was missing. The cache is a speed-up only: anything unexpected (an attrs
whose compile step looks different, an unreadable or foreign file) falls back to
compiling as attrs does.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import marshal
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import CodeType
from typing import Any

from memlens.worker.cache import cache_dir

log = logging.getLogger(__name__)
_COMPILE_STEP = ("script", "globs", "locs", "filename")
"""The parameters of ``attr._make._compile_and_eval`` this replaces (attrs 25–26)."""

CodeKey = tuple[str, bytes]
"""(file name attrs gives the code, digest of its source text)."""


def cache_file() -> Path:
    """One file per Python version and optimization level (what ``compile`` depends on)."""
    tag = f"{sys.implementation.cache_tag}-O{sys.flags.optimize}"
    return cache_dir() / "lsp-server" / f"attrs-methods-{tag}.marshal"


def _read(path: Path) -> dict[CodeKey, CodeType]:
    try:
        codes = marshal.loads(path.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    if not isinstance(codes, dict) or not all(isinstance(c, CodeType) for c in codes.values()):
        return {}
    return codes


def _write(path: Path, codes: dict[CodeKey, CodeType]) -> None:
    """Replace ``path`` at once (another server may be reading it); a read-only cache
    folder only costs speed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent)
    except OSError as exc:
        log.debug("cannot write %s: %s", path, exc)
        return
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(marshal.dumps(codes))
        os.replace(temporary, path)
    except OSError as exc:
        log.debug("cannot write %s: %s", path, exc)
        with contextlib.suppress(OSError):
            os.unlink(temporary)


@contextlib.contextmanager
def cached_attrs_methods(path: Path | None = None) -> Iterator[None]:
    """While inside, attrs classes defined anywhere reuse compiled methods from ``path``
    (default :func:`cache_file`); on leaving, new ones are saved."""
    import attr._make as attrs_make

    original: Any = getattr(attrs_make, "_compile_and_eval", None)
    code = getattr(original, "__code__", None)
    if code is None or code.co_varnames[: len(_COMPILE_STEP)] != _COMPILE_STEP:
        yield  # another attrs: compile as it does
        return
    path = path or cache_file()
    codes = _read(path)
    added: dict[CodeKey, CodeType] = {}

    def compile_and_eval(
        script: str,
        globs: dict[str, Any] | None,
        locs: Mapping[str, object] | None = None,
        filename: str = "",
    ) -> None:
        key = (filename, hashlib.blake2b(script.encode("utf-8", "surrogatepass")).digest())
        compiled = codes.get(key)
        if compiled is None:
            compiled = added[key] = compile(script, filename, "exec")
        eval(compiled, globs, locs)  # as attrs does with what it compiled

    attrs_make._compile_and_eval = compile_and_eval
    try:
        yield
    finally:
        attrs_make._compile_and_eval = original
        if added:
            _write(path, {**codes, **added})
