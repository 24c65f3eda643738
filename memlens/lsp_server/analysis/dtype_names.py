"""The dtype a piece of source names, in the analysis's words: memlens's float storage
formats (``fp32``/``bf16``/``fp16``, whose names :class:`StorageDtype` owns) and two the
analysis adds, ``fp64`` (layers may be built in it) and ``auto`` (transformers takes the
checkpoint's dtype); ``?`` when the dtype is not known statically."""

from __future__ import annotations

import ast

from memlens.lsp_server.analysis.source_index import canonical_name
from memlens.lsp_server.analysis.static_values import Scope, dotted_name, evaluate
from memlens.profiler.tensors import FLOAT_DTYPES, StorageDtype

_NOT_STORED = {"float64": "fp64", "double": "fp64", "auto": "auto"}
"""Names the source may use that are no storage format of memlens's."""
_FP64_BYTES = 8


def element_bytes(dtype: str) -> int | None:
    """Bytes per element of a float dtype the analysis names (``fp64`` included: no storage
    format of memlens's, but a layer may be built in it); None for ``auto`` and ``?``."""
    if dtype == "fp64":
        return _FP64_BYTES
    return StorageDtype(dtype).float_bytes if dtype in _FLOAT_NAMES else None


_FLOAT_NAMES = frozenset(d.value for d in FLOAT_DTYPES)
CAST_METHODS = frozenset({"half", "float", "bfloat16"})
"""``model.half()`` and friends: module methods that cast to the dtype they name."""


def dtype_name(name: str) -> str:
    """``torch.bfloat16``, ``"half"``, ``"float64"``, ``"auto"`` → ``bf16``, ``fp16``,
    ``fp64``, ``auto``; ``?`` for any other name."""
    bare = name.removeprefix("torch.")
    if "." in bare:  # torch spells a dtype with one prefix at most
        return "?"
    stored = StorageDtype.from_torch_name(bare)
    return stored.value if stored is not None else _NOT_STORED.get(bare, "?")


def static_dtype(node: ast.expr, scope: Scope, aliases: dict[str, str] | None = None) -> str:
    """``torch.bfloat16`` / ``"bfloat16"`` / ``"auto"`` → ``bf16``/``auto``; ``?`` if unknown.
    ``aliases`` (the file's imports) make ``T.float16`` after ``import torch as T`` count."""
    name = canonical_name(aliases or {}, dotted_name(node))
    if name is not None and name.startswith("torch."):
        return dtype_name(name)
    value = evaluate(node, scope)
    if isinstance(value, str):
        return dtype_name(value)
    if isinstance(node, ast.Name):
        assigned = scope.node(node.id)
        return static_dtype(assigned, scope, aliases) if assigned is not None else "?"
    return "?"
