"""``torch`` as the evaluator models it: ``torch.nn`` layers from the layer tables,
``ModuleList``/``ModuleDict``/``Sequential`` containers, tensors from factories
(``torch.ones(n)``) with their element count, module methods (casts, ``register_buffer``,
``append``) and tensor methods."""

from __future__ import annotations

import ast
import math
from typing import TYPE_CHECKING, Any

from memlens.lsp_server.analysis.dtype_names import dtype_name
from memlens.lsp_server.analysis.evaluator.values import (
    MAX_INT,
    UNKNOWN,
    External,
    Module,
    Tensor,
    is_int,
)
from memlens.lsp_server.analysis.layer_params import LAYERS, PARAMETERLESS
from memlens.profiler.tensors import FLOAT_DTYPES

if TYPE_CHECKING:
    from memlens.lsp_server.analysis.evaluator.interpreter import Evaluator

FACTORIES = frozenset({"ones", "zeros", "empty", "randn", "rand", "full", "arange"})
"""``torch.<factory>(shape)`` makes a tensor of that shape."""
CASTS = {"half": "fp16", "bfloat16": "bf16", "float": "fp32", "double": "fp64"}
"""Cast method → the dtype it gives."""
_DTYPES = frozenset({*(str(d) for d in FLOAT_DTYPES), "fp64"})
_CONTAINERS = ("ModuleList", "Sequential", "ModuleDict")


def layer(run: Evaluator, kind: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
    """``torch.nn.<kind>(*args, **kwargs)``: a container, a parameterless module, or a
    layer sized by its table (opaque when its arguments are unknown); the parameters of
    each layer constructor run are recorded by the call's node."""
    dtype = dtype_of(kwargs.pop("dtype", run.default_dtype))
    kwargs.pop("device", None)
    if kind in _CONTAINERS:
        return _container(kind, args, kwargs)
    if kind in PARAMETERLESS:
        return Module(kind)
    signature = LAYERS.get(kind)
    module = Module(kind)
    if signature is None or dtype is None:
        module.opaque = True
        return module
    arguments: dict[str, Any] = dict(signature.defaults)
    arguments.update(zip(signature.parameters, args, strict=False))
    arguments.update(kwargs)
    if set(arguments) - set(signature.parameters) or set(signature.parameters) - set(arguments):
        module.opaque = True
        return module
    known = {k: (None if v is UNKNOWN else v) for k, v in arguments.items()}
    try:
        count = signature.count(known)
    except (TypeError, KeyError):
        count = None
    if count is None:
        module.opaque = True
        return module
    seen = run.layer_params.setdefault(id(node), count)
    if seen != count:
        run.layer_params[id(node)] = None
    if kind in ("Linear", "Embedding"):
        rows: int = arguments["out_features" if kind == "Linear" else "num_embeddings"]
        cols: int = arguments["in_features" if kind == "Linear" else "embedding_dim"]
        module.params["weight"] = Tensor(rows * cols, dtype)
        if count > rows * cols:
            module.params["bias"] = Tensor(count - rows * cols, dtype)
    elif count:
        module.params["weight"] = Tensor(count, dtype)
    return module


def _container(kind: str, args: list[Any], kwargs: dict[str, Any]) -> Module:
    module = Module(kind)
    if kind == "Sequential":
        items: Any = args[0] if len(args) == 1 and isinstance(args[0], dict) else args
    else:
        items = args[0] if args else kwargs.get("modules", [])
    if isinstance(items, dict):
        for key, value in items.items():
            _add_child(module, str(key), value)
    elif isinstance(items, list | tuple):
        for index, value in enumerate(items):
            _add_child(module, str(index), value)
    elif items is not None:
        module.opaque = True
    return module


def _add_child(container: Module, key: str, item: Any) -> None:
    if isinstance(item, Module):
        container.children[key] = item
    elif item is UNKNOWN:
        container.unknown.append(key)


def tensor(kind: str, args: list[Any], kwargs: dict[str, Any], default: str) -> Tensor:
    """``torch.<kind>(...)`` of a factory: its element count when the shape is known; float
    factories without a ``dtype`` make ``default`` (``torch.set_default_dtype``)."""
    dtype = dtype_of(kwargs.get("dtype", default)) or default
    if kind == "arange":
        bounds = [a for a in args if is_int(a)]
        if len(bounds) != len(args) or not 1 <= len(bounds) <= 3:
            return Tensor(None, dtype)
        return Tensor(len(range(*bounds)) if bounds[-1:] != [0] or len(bounds) < 3 else 0, dtype)
    shape = args[:1] if kind == "full" else args
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        shape = list(shape[0])
    if "size" in kwargs and isinstance(kwargs["size"], tuple | list):
        shape = list(kwargs["size"])
    if not all(is_int(s) and s >= 0 for s in shape):
        return Tensor(None, dtype)
    numel = math.prod(shape)
    return Tensor(numel if numel < MAX_INT else None, dtype)


def module_method(module: Module, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """A method of a module: casts (in place, the module returned), buffer and parameter
    registration, a container's ``append``/``extend``."""
    if name in CASTS and not args:
        _cast(module, CASTS[name])
        return module
    if name == "to":
        for value in (*args, kwargs.get("dtype")):
            dtype = dtype_of(value) if isinstance(value, External | str) else None
            if dtype is not None:
                _cast(module, dtype)
        return module
    if name in ("register_buffer", "register_parameter") and len(args) >= 2:
        key, value = args[0], args[1]
        if isinstance(key, str) and isinstance(value, Tensor):
            (module.buffers if name == "register_buffer" else module.params)[key] = value
        elif isinstance(key, str) and value is not None:
            module.unknown.append(key)
        return None
    if name in ("append", "extend", "add_module") and module.kind in ("ModuleList", "Sequential"):
        items = args if name == "append" else (list(args[0]) if args else [])
        for item in items:
            _add_child(module, str(len(module.children)), item)
        return None
    return UNKNOWN


def tensor_method(obj: Tensor, name: str) -> Any:
    """A method of a tensor: casts and copies keep its size."""
    if name in CASTS:
        return Tensor(obj.numel, CASTS[name])
    return Tensor(obj.numel, obj.dtype) if name in ("to", "clone", "detach") else UNKNOWN


def _cast(module: Module, dtype: str) -> None:
    for table in (module.params, module.buffers):
        for value in table.values():
            value.dtype = dtype
    for child in module.children.values():
        _cast(child, dtype)


def dtype_of(value: Any) -> str | None:
    """The float dtype a value names (``torch.bfloat16``, ``"bf16"``), else None."""
    if isinstance(value, str) and value in _DTYPES:
        return value
    name = value.name if isinstance(value, External) else value if isinstance(value, str) else ""
    if not name:
        return None
    dtype = dtype_name(name)
    return dtype if dtype in _DTYPES else None
