"""Load and compress as one step: a model's weights are quantized shard by shard as they
are read, so the full-precision model never exists in memory.

The model is built as a skeleton whose parameters are on the meta device (buffers such as
rotary tables are real: they are computed, not stored). Each ``*.safetensors`` shard is
opened in turn; a tensor of a Linear the config compresses waits until its layer is
complete (weight and bias), which is then converted and put in place; any other tensor
is cast to ``dtype`` and assigned. Tensors are read one by one with plain file reads (a
memory-mapped shard would stay resident as it is read), so the peak is the compressed
model plus about one layer in full precision.

A checkpoint whose tensor names need transformers' conversions (renamed or fused keys)
is refused with a ConfigError: load it with ``load_model`` and call ``compress_``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import io
import json
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from memlens.engine.weights.config import AutoWeightConfig, LowRankWeightConfig, WeightConfig
from memlens.engine.weights.quantize import resolve_plan
from memlens.engine.weights.schemes import convert_linear, replace_module
from memlens.errors import ConfigError, UsageError
from memlens.profiler.meta import build_meta_model


@contextlib.contextmanager
def _parameters_on_meta() -> Iterator[None]:
    """Every parameter registered inside goes to the meta device (buffers stay real)."""
    register = nn.Module.register_parameter

    def on_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and not param.is_meta:
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register(module, name, param)

    nn.Module.register_parameter = on_meta  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        nn.Module.register_parameter = register  # type: ignore[method-assign]


_M_MMAP_THRESHOLD = -3
_GLIBC_INITIAL_THRESHOLD = 128 * 1024


@contextlib.contextmanager
def _large_blocks_returned() -> Iterator[None]:
    """On glibc, serve blocks of 1 MiB and more with their own mappings while loading.

    glibc raises its mmap threshold each time a large block is freed (up to 32 MiB), after
    which a layer's full-precision temporaries come from the heap, whose freed space is
    kept: the load's resident size then grew by hundreds of MiB. Afterwards the threshold
    is glibc's initial 128 KiB, kept fixed (no growth)."""
    mallopt = None
    if sys.platform == "linux" and (name := ctypes.util.find_library("c")):
        with contextlib.suppress(OSError, AttributeError):
            mallopt = ctypes.CDLL(name).mallopt
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, 2**20)
    try:
        yield
    finally:
        if mallopt is not None:
            mallopt(_M_MMAP_THRESHOLD, _GLIBC_INITIAL_THRESHOLD)


def check_streamable(config: WeightConfig) -> None:
    """UsageError for configs that need the whole model first (calibration runs)."""
    if isinstance(config, AutoWeightConfig):
        raise UsageError(
            "auto compression measures the whole model on calibration text: load it, then "
            "call compress_ (or run `memlens compress --weights auto`)"
        )
    inner = (
        config,
        *(c for _, c in getattr(config, "overrides", ())),
        getattr(config, "default", None),
    )
    if any(isinstance(c, LowRankWeightConfig) and c.max_error is not None for c in inner):
        raise UsageError("a low-rank error target needs calibration inputs: use compress_")


def _skeleton(config: dict[str, Any], dtype: torch.dtype) -> nn.Module:
    from transformers.initialization import no_init_weights

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with no_init_weights(), _parameters_on_meta():
            model = build_meta_model(config, device="cpu")
    finally:
        torch.set_default_dtype(previous)
    if callable(tie := getattr(model, "tie_weights", None)):
        tie()  # a head tied to the embeddings is then left out of the plan
    return model


class _Loader:
    """Puts one checkpoint's tensors into a skeleton, compressing the planned Linears."""

    def __init__(self, model: nn.Module, config: WeightConfig, dtype: torch.dtype) -> None:
        self.model = model
        self.dtype = dtype
        self.plan = {n: c for n, c in resolve_plan(model, config).items() if c is not None}
        self.pending: dict[str, dict[str, torch.Tensor]] = {}
        self.names = set(model.state_dict())
        prefix = getattr(model, "base_model_prefix", "")
        self.prefix = f"{prefix}." if prefix else ""
        self.unknown: list[str] = []

    def name_of(self, key: str) -> str | None:
        """The model's name for a checkpoint key (with or without the base prefix)."""
        for name in (key, self.prefix + key, key.removeprefix(self.prefix)):
            if name in self.names:
                return name
        return None

    def put(self, key: str, tensor: torch.Tensor) -> None:
        name = self.name_of(key)
        if name is None:
            self.unknown.append(key)
            return
        owner, _, leaf = name.rpartition(".")
        if owner in self.plan:
            parts = self.pending.setdefault(owner, {})
            parts[leaf] = tensor
            linear = self.model.get_submodule(owner)
            if all(part in parts for part, p in linear.named_parameters() if p is not None):
                self._compress(owner, linear, self.pending.pop(owner))
            return
        module = self.model.get_submodule(owner)
        value = tensor.to(self.dtype) if tensor.is_floating_point() else tensor
        if leaf in module._parameters:
            module._parameters[leaf] = nn.Parameter(value, requires_grad=False)
        else:
            module._buffers[leaf] = value

    def _compress(self, name: str, linear: nn.Module, parts: dict[str, torch.Tensor]) -> None:
        assert isinstance(linear, nn.Linear)
        weight = parts["weight"].to(self.dtype)
        dense = nn.Linear(
            linear.in_features, linear.out_features, bias="bias" in parts, device="meta"
        )
        dense.weight = nn.Parameter(weight, requires_grad=False)
        if "bias" in parts:
            dense.bias = nn.Parameter(parts["bias"].to(self.dtype), requires_grad=False)
        replace_module(self.model, name, convert_linear(dense, self.plan[name]))

    def finish(self, folder: Path) -> nn.Module:
        if callable(tie := getattr(self.model, "tie_weights", None)):
            tie()
        left = [
            n for n, t in (*self.model.named_parameters(), *self.model.named_buffers()) if t.is_meta
        ]
        if self.pending or left:
            missing = [*self.pending, *left]
            extra = f"; unknown tensors such as {self.unknown[0]}" if self.unknown else ""
            raise ConfigError(
                f"{folder}: no stored values for {', '.join(missing[:3])}{extra} (a checkpoint "
                "whose names transformers converts on load: use load_model, then compress_)"
            )
        return self.model.eval()


def load_compressing(
    folder: Path, config: dict[str, Any], weights: WeightConfig, dtype: torch.dtype
) -> nn.Module:
    """The model in ``folder`` (its transformers ``config`` dict) with ``weights`` applied
    shard by shard (module docstring); layers left as they are run in ``dtype``."""
    check_streamable(weights)
    with _large_blocks_returned():
        loader = _Loader(_skeleton(config, dtype), weights, dtype)
        for shard in sorted(folder.glob("*.safetensors")):
            for key, tensor in read_safetensors(shard):
                loader.put(key, tensor)
        return loader.finish(folder)


_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
}
_MAX_HEADER = 100 * 2**20


def read_safetensors(path: Path) -> Iterator[tuple[str, torch.Tensor]]:
    """``(name, tensor)`` of a ``.safetensors`` file in file order, each read into its own
    memory; ConfigError for a truncated or corrupt file."""
    try:
        with path.open("rb") as file:
            header, start = _header(file, path)
            entries = sorted(
                ((k, v) for k, v in header.items() if k != "__metadata__"),
                key=lambda item: item[1]["data_offsets"][0],
            )
            for key, entry in entries:
                yield key, _read_tensor(file, start, entry, path, key)
    except OSError as exc:
        raise ConfigError(f"{path} is unreadable: {exc}") from None


def _header(file: io.BufferedReader, path: Path) -> tuple[dict[str, Any], int]:
    raw = file.read(8)
    if len(raw) != 8:
        raise ConfigError(f"{path} is truncated: no safetensors header")
    (length,) = struct.unpack("<Q", raw)
    if length > _MAX_HEADER:
        raise ConfigError(f"{path} is not a safetensors file (header of {length} bytes)")
    try:
        header = json.loads(file.read(length))
    except ValueError:
        raise ConfigError(f"{path} is corrupt: its safetensors header is not JSON") from None
    if not isinstance(header, dict):
        raise ConfigError(f"{path} is corrupt: its safetensors header is not a table")
    return header, 8 + length


def _read_tensor(
    file: io.BufferedReader, start: int, entry: Any, path: Path, key: str
) -> torch.Tensor:
    try:
        dtype = _DTYPES[entry["dtype"]]
        shape = [int(size) for size in entry["shape"]]
        begin, end = (int(offset) for offset in entry["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{path}: the entry of {key} is damaged or of an unknown dtype") from None
    tensor = torch.empty(shape, dtype=dtype)
    nbytes = tensor.numel() * tensor.element_size()
    if end - begin != nbytes:
        raise ConfigError(f"{path}: {key} holds {end - begin} bytes, its shape needs {nbytes}")
    file.seek(start + begin)
    target = tensor.view(-1).view(torch.uint8).numpy().data  # (nbytes,) raw bytes
    if nbytes and file.readinto(target) != nbytes:
        raise ConfigError(f"{path} is truncated: {key} is cut short")
    return tensor
