"""Save and load compressed models: ``model.safetensors`` plus ``memlens.json``.

The metadata records the compression config (with its version), each replaced module's
scheme and the base model's transformers config, so loading never guesses a mode from a
file name. Loading builds the model on the meta device, swaps in empty compressed
modules of the recorded shapes, and assigns the stored tensors: the full-precision weights
are never materialised, and nothing is unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from memlens import __version__
from memlens.engine.weights.config import WeightConfig, config_from_json, config_to_json
from memlens.engine.weights.int4_devices import portable_int4
from memlens.engine.weights.layers import (
    CompressedLinear,
    Int4Linear,
    Int8DynLinear,
    Int8Linear,
    LowRankLinear,
)
from memlens.engine.weights.schemes import replace_module
from memlens.errors import ConfigError
from memlens.kernels import int4_values

METADATA = "memlens.json"
WEIGHTS = "model.safetensors"
_BUFFER = "__buffer__."  # prefix of non-persistent buffers stored beside the state
PORTABLE_INT4 = "portable"
"""``int4_layout`` of checkpoints whose INT4 weights are in the portable packing (see
``int4_devices.py``); older ones hold aten's CPU packing of the machine that wrote them."""


def _scheme(module: nn.Module) -> str | None:
    return module.kind if isinstance(module, CompressedLinear) else None


def save_compressed(model: nn.Module, config: WeightConfig, folder: str | Path) -> Path:
    """Write a compressed transformers model to ``folder``; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    layers = {
        name: {
            "scheme": kind,
            "in_features": m.in_features,
            "out_features": m.out_features,
            "group_size": getattr(m, "group_size", None),
            "rank": getattr(m, "rank", None),
        }
        for name, m in model.named_modules()
        if (kind := _scheme(m)) is not None
    }
    base: Any = getattr(model, "config", None)
    if base is None:
        raise ConfigError("save_compressed needs a transformers model (it has no .config)")
    metadata = {
        "memlens": __version__,
        "config": config_to_json(config),
        "layers": layers,
        "model_config": base.to_dict(),
        "int4_layout": PORTABLE_INT4,
    }
    tensors, aliases = _unique_tensors(model)
    metadata["aliases"] = aliases
    save_file(tensors, str(folder / WEIGHTS))
    (folder / METADATA).write_text(json.dumps(metadata, indent=1))
    return folder


def _unique_tensors(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """State and non-persistent buffers (rotary tables), each storage once: a tied weight
    is stored under its first name and recorded as an alias of it."""
    state: dict[str, torch.Tensor] = dict(model.state_dict())
    for name, buffer in model.named_buffers():
        if name not in state:  # a non-persistent buffer
            state[_BUFFER + name] = buffer
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    first: dict[tuple[int, int], str] = {}
    for name, tensor in state.items():
        key = (tensor.untyped_storage().data_ptr(), int(tensor.storage_offset()))
        if key in first and tensor.numel():
            aliases[name] = first[key]
            continue
        first.setdefault(key, name)
        tensors[name] = tensor.contiguous()
    return tensors, aliases


def _read_metadata(folder: Path) -> dict[str, Any]:
    try:
        metadata = json.loads((folder / METADATA).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{folder} has no {METADATA}: not a memlens checkpoint") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{folder / METADATA} is unreadable or corrupt: {exc}") from None
    if not isinstance(metadata, dict):
        raise ConfigError(f"{folder / METADATA} is not a memlens checkpoint's metadata")
    try:
        config_from_json(metadata.get("config"))
    except ConfigError as exc:
        raise ConfigError(f"{folder / METADATA}: {exc}") from None
    return metadata


def read_config(folder: str | Path) -> WeightConfig:
    """The compression config a checkpoint was made with."""
    return config_from_json(_read_metadata(Path(folder))["config"])


def _empty_module(spec: dict[str, Any]) -> nn.Module:
    out, inp = int(spec["out_features"]), int(spec["in_features"])
    with torch.device("meta"):
        if spec["scheme"] == "int8":
            return Int8Linear(torch.empty(out, inp, dtype=torch.int8), torch.empty(out), None)
        if spec["scheme"] == "int8-dyn":
            return Int8DynLinear(torch.empty(out, inp, dtype=torch.int8), torch.empty(out), None)
        if spec["scheme"] == "lowrank":
            rank = int(spec["rank"])
            return LowRankLinear(torch.empty(rank, inp), torch.empty(out, rank), None)
        group = int(spec["group_size"])
        return Int4Linear(
            torch.empty(out, inp // 2, dtype=torch.uint8),
            torch.empty(inp // group, out, 2),
            group,
            out,
            inp,
            None,
        )


def _repack_machine_int4(metadata: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """A checkpoint from before the portable INT4 packing: its INT4 weights are read in
    this machine's aten CPU layout (right where the writer's CPU was of the same kind, as
    such checkpoints always were) and stored portably."""
    for name, spec in metadata.get("layers", {}).items():
        key = f"{name}.packed"
        if spec.get("scheme") == "int4" and key in tensors:
            n, k = int(spec["out_features"]), int(spec["in_features"])
            values = int4_values(tensors[key], n, k, int(spec["group_size"]))
            tensors[key] = portable_int4(values)


def load_compressed(folder: str | Path) -> nn.Module:
    """Load what :func:`save_compressed` wrote (on the CPU, in eval mode)."""
    from memlens.profiler.meta import build_meta_model

    folder = Path(folder)
    metadata = _read_metadata(folder)
    from memlens.engine.load_compressing import read_safetensors

    try:  # each tensor in its own aligned memory (see kernels.cpu.INT8_ALIGNMENT)
        tensors = dict(read_safetensors(folder / WEIGHTS))
    except ConfigError as exc:
        raise ConfigError(f"{folder / WEIGHTS} is missing, truncated or corrupt: {exc}") from None
    for alias, name in metadata.get("aliases", {}).items():
        if name in tensors:
            tensors[alias] = tensors[name]
    buffers = {
        k.removeprefix(_BUFFER): tensors.pop(k) for k in list(tensors) if k.startswith(_BUFFER)
    }
    if metadata.get("int4_layout") != PORTABLE_INT4:
        _repack_machine_int4(metadata, tensors)
    model = build_meta_model(metadata["model_config"])
    try:
        for name, spec in metadata["layers"].items():
            module = _empty_module(spec)
            if f"{name}.bias" in tensors:
                module.register_buffer("bias", torch.empty(spec["out_features"], device="meta"))
            replace_module(model, name, module)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{folder / METADATA}: a layer entry is damaged: {exc}") from None
    try:
        model.load_state_dict(tensors, strict=True, assign=True)
        for name, tensor in buffers.items():
            owner_name, _, buffer = name.rpartition(".")
            owner = model.get_submodule(owner_name) if owner_name else model
            owner.register_buffer(buffer, tensor, persistent=False)
    except (RuntimeError, AttributeError) as exc:
        raise ConfigError(f"{folder}: the weights do not match the recorded model: {exc}") from None
    if callable(tie := getattr(model, "tie_weights", None)):
        tie()  # assign=True gave each tied name its own Parameter over the same storage
    left = [n for n, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if left:
        raise ConfigError(f"{folder}: no stored values for {', '.join(left[:3])}")
    return model.eval()
