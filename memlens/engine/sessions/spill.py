"""The cold tier: a session's own KV cache spilled to one safetensors file, read back on use.

File layout: the tensors of :meth:`FullKV.to_tensors` or :meth:`QuantizedKV.to_tensors`
(whatever the session held when it was spilled, so it continues exactly as it was), and
in the safetensors metadata one JSON header: format version, session id, token ids, the
form (``full``, ``int8`` or ``int4``), group size, dtype, layer count and a SHA-256 of the
tensor bytes. Files are written to ``NAME.partial`` and moved into place with
``os.replace``, so a crash never leaves a half-written file under the final name.

On read, the header is checked (version, session, tokens, form, dtype), then the tensors
against the header's SHA-256, then the whole file against the SHA-256 the writer kept in
memory (:attr:`Spilled.sha256`): a file that is truncated, altered, or replaced by
another valid spill file (other shapes, another store's session) is refused naming it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from memlens.engine.sessions.forms import FullKV, QuantizedKV, SessionKV
from memlens.errors import SpillError

SPILL_VERSION = 1
_HEADER = "memlens_session"


@dataclass(frozen=True)
class Spilled:
    """A session's KV cache as one spill file."""

    path: Path
    nbytes: int
    """Size of the file (bytes)."""
    sha256: str
    """Hex SHA-256 of the whole file as written: what it must still be when read."""


def _checksum(named: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(named):
        digest.update(name.encode())
        flat = named[name].contiguous().reshape(-1)  # (N,) of any dtype
        digest.update(flat.view(torch.uint8).numpy().tobytes())  # (N * itemsize,) bytes
    return digest.hexdigest()


def _write_partial(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (tests replace this to simulate a full disk)."""
    with path.open("wb") as handle:
        handle.write(data)


def write_spill(path: Path, session_id: int, tokens: list[int], kv: SessionKV) -> Spilled:
    """Write ``kv`` to ``path`` atomically; SpillError (nothing left behind) on failure."""
    named = {name: tensor.cpu() for name, tensor in kv.to_tensors().items()}
    header: dict[str, Any] = {
        "version": SPILL_VERSION,
        "session": session_id,
        "tokens": tokens,
        "form": "full" if isinstance(kv, FullKV) else f"int{kv.bits}",
        "group_size": None if isinstance(kv, FullKV) else kv.group_size,
        "dtype": str(kv.layers[0][0].dtype if isinstance(kv, FullKV) else kv.dtype),
        "num_layers": len(kv.layers),
        "checksum": _checksum(named),
    }
    data = save(named, metadata={_HEADER: json.dumps(header)})
    partial = path.with_name(path.name + ".partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_partial(partial, data)
        os.replace(partial, path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # the folder may be what failed
            partial.unlink(missing_ok=True)
        hint = (
            "the disk is full: free space there or raise the budget"
            if exc.errno == errno.ENOSPC
            else "check that the folder exists and is writable"
        )
        raise SpillError(
            f"could not spill session {session_id} to {path}: {exc.strerror or exc}; {hint}. "
            "The session stays in memory."
        ) from None
    return Spilled(path, len(data), hashlib.sha256(data).hexdigest())


_FORMS: dict[str, Literal[8, 4] | None] = {"full": None, "int8": 8, "int4": 4}
"""Header ``form`` → bits of the quantized form (``None``: full precision)."""


def read_spill(
    spilled: Spilled, session_id: int, tokens: list[int], device: torch.device | None = None
) -> SessionKV:
    """The KV cache ``write_spill`` wrote for this session, on ``device`` (the CPU by
    default); SpillError naming the file when it is missing, truncated, altered or another
    session's."""
    path = spilled.path

    def corrupt(why: str) -> SpillError:
        return SpillError(
            f"spill file {path} of session {session_id} is unusable ({why}); the session "
            "is lost: close it and start a new one"
        )

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise corrupt(f"cannot read it: {exc.strerror or exc}") from None
    try:
        named = load(data)
        header = json.loads(_metadata(data)[_HEADER])
        if not isinstance(header, dict):
            raise TypeError(f"the header is a {type(header).__name__}, not an object")
    except (SafetensorError, ValueError, KeyError, TypeError) as exc:
        raise corrupt(f"not a memlens spill file: {exc}") from None
    if header.get("version") != SPILL_VERSION:
        raise corrupt(f"format version {header.get('version')!r}, expected {SPILL_VERSION}")
    if header.get("session") != session_id or header.get("tokens") != tokens:
        raise corrupt("it holds another session's tokens")
    if header.get("checksum") != _checksum(named):
        raise corrupt("checksum mismatch: the tensors were altered")
    if hashlib.sha256(data).hexdigest() != spilled.sha256:
        raise corrupt("checksum mismatch: the file differs from the one written")
    form = header.get("form")
    dtype = getattr(torch, str(header.get("dtype")).removeprefix("torch."), None)
    if form not in _FORMS or not isinstance(dtype, torch.dtype):
        raise corrupt(f"unknown form {form!r} or dtype {header.get('dtype')!r}")
    try:
        num_layers = int(header["num_layers"])
        # copied out of the file's bytes into aligned memory of their own (safetensors
        # leaves views at whatever offset its header ends; see kernels.cpu.INT8_ALIGNMENT)
        named = {name: tensor.to(device=device, copy=True) for name, tensor in named.items()}
        bits = _FORMS[form]
        if bits is None:
            return FullKV.from_tensors(named, num_layers)
        return QuantizedKV.from_tensors(named, num_layers, bits, int(header["group_size"]), dtype)
    except (KeyError, TypeError, ValueError) as exc:
        raise corrupt(f"incomplete header or tensors: {exc!r}") from None


def _metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of safetensors bytes (``load`` returns only the tensors)."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    metadata: dict[str, str] = header["__metadata__"]
    return metadata
