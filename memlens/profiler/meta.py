"""The exact estimator: build the model on the meta device and read its real tensors.

No weights are allocated or downloaded: transformers constructs every module with
shape-only meta tensors, and each parameter's module type decides how compressed formats
store it. Imports torch and transformers (the CLI and the worker use this; the language
server never imports it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from memlens._transformers import transformers_module
from memlens.errors import ConfigError, UnsupportedArchitectureError
from memlens.profiler.architectures import (
    ArchitectureSpec,
    AttentionSpec,
    BlockKind,
    BlockSpec,
    ModelDims,
    describe,
)
from memlens.profiler.estimate import MemoryEstimate, estimate_from_spec
from memlens.profiler.tensors import StorageDtype, TensorKind, TensorSpec

log = logging.getLogger(__name__)

_LAYER_FIELDS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
MAX_LAYERS = 4096


def build_meta_model(
    config: Mapping[str, Any], default_class: str | None = None, device: str = "meta"
) -> nn.Module:
    """Instantiate the model a config describes on the meta device (no memory, no I/O),
    or, for random-weight benchmarks, with uninitialised tensors on ``device``.

    The class is the first of the config's ``architectures`` that transformers knows,
    else ``default_class``, else ``AutoModelForCausalLM``, else ``AutoModel``. Remote code
    is never run. A config
    transformers rejects raises ConfigError; an unknown ``model_type``
    UnsupportedArchitectureError.
    """
    transformers = transformers_module()
    data = dict(config)
    model_type = data.pop("model_type", None)
    if not isinstance(model_type, str) or model_type not in transformers.CONFIG_MAPPING:
        raise UnsupportedArchitectureError(
            f"transformers {transformers.__version__} does not know model_type {model_type!r}; "
            "memlens never runs a repository's own code (trust_remote_code)"
        )
    for key in _LAYER_FIELDS:
        value = data.get(key)
        if isinstance(value, int) and value > MAX_LAYERS:
            raise ConfigError(f"{key} = {value} is beyond any real model (max {MAX_LAYERS})")
    names = [n for n in data.get("architectures") or [] if isinstance(n, str)]
    names = names or ([default_class] if default_class else [])
    try:
        hf_config = transformers.AutoConfig.for_model(model_type, **data)
        with torch.device(device):
            for name in names:
                if (cls := getattr(transformers, name, None)) is not None:
                    return cls(hf_config)  # type: ignore[no-any-return]
            for auto in (transformers.AutoModelForCausalLM, transformers.AutoModel):
                if type(hf_config) in auto._model_mapping:
                    return auto.from_config(hf_config)  # type: ignore[no-any-return]
    except Exception as exc:
        raise ConfigError(
            f"transformers cannot build this {model_type} config: {type(exc).__name__}: {exc}"
        ) from exc
    raise UnsupportedArchitectureError(f"transformers has no model class for {model_type!r}")


def _layer_list(model: nn.Module) -> tuple[str, nn.ModuleList] | None:
    lists = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.ModuleList) and len(m)]
    if not lists:
        return None
    return max(lists, key=lambda item: sum(p.numel() for p in item[1].parameters()))


def _tensor_spec(name: str, param: nn.Parameter, owner: nn.Module) -> TensorSpec:
    shape = tuple(param.shape)
    transformers = transformers_module()  # cheap after the first call
    if isinstance(owner, nn.Linear) and name.endswith("weight"):
        return TensorSpec(name, shape, TensorKind.MATRIX, shape[0], shape[1])
    if isinstance(owner, transformers.pytorch_utils.Conv1D) and name.endswith("weight"):
        return TensorSpec(name, shape, TensorKind.MATRIX, shape[1], shape[0])
    if isinstance(owner, nn.Embedding):
        return TensorSpec(name, shape, TensorKind.EMBEDDING)
    if len(shape) == 3:  # stacked experts: (experts, out, in)
        return TensorSpec(name, shape, TensorKind.MATRIX, shape[0] * shape[1], shape[2])
    if len(shape) == 1:
        return TensorSpec(name, shape, TensorKind.VECTOR)
    return TensorSpec(name, shape, TensorKind.OTHER)


def _block_kind(name: str, tensors: list[TensorSpec], is_layer: bool, causal: bool) -> BlockKind:
    if is_layer:
        return BlockKind.DECODER_LAYER if causal else BlockKind.ENCODER_LAYER
    if name.endswith(("lm_head", "decoder")):
        return BlockKind.LM_HEAD
    if tensors and all(t.kind is TensorKind.EMBEDDING for t in tensors):
        return BlockKind.EMBEDDING
    leaf = name.rpartition(".")[2].lower()
    is_norm_name = "norm" in leaf or leaf.startswith("ln_")
    if tensors and all(t.kind is TensorKind.VECTOR for t in tensors) and is_norm_name:
        return BlockKind.NORM
    return BlockKind.HEAD


def blocks_of(
    model: nn.Module, causal: bool, attention: Sequence[AttentionSpec | None]
) -> tuple[BlockSpec, ...]:
    """Group a model's parameters into blocks named by module path, ties detected by identity.

    Parameters inside the largest ``ModuleList`` (the layers) form one block per layer;
    every other parameter belongs to the block of its owning module.
    """
    layers = _layer_list(model)
    modules = dict(model.named_modules())
    owner_of_first: dict[int, str] = {}
    tensors: dict[str, list[TensorSpec]] = {}
    ties: dict[str, str] = {}
    order: list[str] = []
    for full_name, param in model.named_parameters(remove_duplicate=False):
        module_path, _, leaf = full_name.rpartition(".")
        block, local = module_path, leaf
        if layers and full_name.startswith(layers[0] + "."):
            index, _, rest = full_name[len(layers[0]) + 1 :].partition(".")
            block, local = f"{layers[0]}.{index}", rest
        if block not in tensors:
            tensors[block] = []
            order.append(block)
        if id(param) in owner_of_first:
            ties.setdefault(block, owner_of_first[id(param)])
            continue
        owner_of_first[id(param)] = block
        tensors[block].append(_tensor_spec(local, param, modules[module_path]))
    layer_names = [f"{layers[0]}.{i}" for i in range(len(layers[1]))] if layers else []
    result = []
    for name in order:
        is_layer = name in layer_names
        kind = _block_kind(name, tensors[name], is_layer, causal)
        attn = attention[layer_names.index(name)] if is_layer and attention else None
        tied = ties.get(name) if not tensors[name] else None
        result.append(BlockSpec(name, kind, tuple(tensors[name]), attn, tied))
    return tuple(result)


def _generic_facts(
    hf: Any, model: nn.Module, num_layers: int
) -> tuple[bool, list[AttentionSpec | None], ModelDims, str]:
    """Causality, per-layer attention and dims from generic config fields, and a note.

    A config without top-level sizes (multimodal models nest them) gets no KV or
    activation figures, and the note says so.
    """
    causal = bool(getattr(hf, "is_decoder", False)) or "CausalLM" in type(model).__name__
    sizes = [
        getattr(hf, name, None) for name in ("hidden_size", "num_attention_heads", "vocab_size")
    ]
    if not all(isinstance(v, int) and v > 0 for v in sizes):
        note = (
            f"no analytic formulas for {hf.model_type!r}: parameters are exact (meta device); "
            "its config has no top-level sizes, so KV cache and activations are not estimated"
        )
        return False, [], ModelDims(0, 0, 1, 1, 0, 0, num_layers), note
    hidden, heads, vocab = (int(v) for v in sizes)  # type: ignore[arg-type]
    kv_heads = getattr(hf, "num_key_value_heads", None) or heads
    head_dim = getattr(hf, "head_dim", None) or hidden // heads
    window = getattr(hf, "sliding_window", None)
    types = getattr(hf, "layer_types", None) or ["full_attention"] * num_layers
    attention: list[AttentionSpec | None] = (
        [
            AttentionSpec(heads, kv_heads, head_dim, window if t == "sliding_attention" else None)
            for t in types
        ]
        if causal
        else []
    )
    dims = ModelDims(
        hidden_size=hidden,
        intermediate_size=getattr(hf, "intermediate_size", None) or 4 * hidden,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=vocab,
        num_layers=num_layers,
        max_positions=getattr(hf, "max_position_embeddings", None),
    )
    return (
        causal,
        attention,
        dims,
        (
            f"no analytic formulas for {hf.model_type!r}: parameters are exact (meta device); "
            "KV cache and activations use generic config fields"
        ),
    )


def exact_spec(config: Mapping[str, Any]) -> tuple[ArchitectureSpec, bool, list[str]]:
    """The ArchitectureSpec of the real (meta-device) model.

    Returns the spec, whether its KV figures are exact, and notes. KV-cache and activation
    facts come from the analytic family when there is one (its KV formulas are tested
    against transformers' own cache); otherwise from generic config fields, flagged.
    """
    notes: list[str] = []
    try:
        analytic: ArchitectureSpec | None = describe(config)
    except (UnsupportedArchitectureError, ConfigError):
        analytic = None  # transformers may still build it, with its own defaults
    # The config's own ``architectures`` decide the class; the family's is only a fallback.
    model = build_meta_model(config, analytic.model_class if analytic else None)
    layer_list = _layer_list(model)
    num_layers = len(layer_list[1]) if layer_list else 0
    if analytic is not None:
        attention = [b.attention for b in analytic.blocks if b.kind is BlockKind.DECODER_LAYER]
        causal, dims, family, kv_exact = analytic.causal, analytic.dims, analytic.family, True
        notes.extend(analytic.notes)
    else:
        hf_config: Any = model.config
        causal, attention, dims, note = _generic_facts(hf_config, model, num_layers)
        family, kv_exact = str(hf_config.model_type), False
        notes.append(note)
    blocks = blocks_of(model, causal, attention)
    spec = ArchitectureSpec(family, type(model).__name__, blocks, dims, causal)
    return spec, kv_exact, notes


def exact_estimate(
    config: Mapping[str, Any],
    model: str,
    dtypes: Sequence[StorageDtype] = (StorageDtype.BF16,),
    **options: Any,
) -> list[MemoryEstimate]:
    """MemoryEstimates from the real parameter shapes of the meta-device model."""
    spec, kv_exact, notes = exact_spec(config)
    return estimate_from_spec(
        spec, model, dtypes, source="meta", exact=kv_exact, notes=notes, **options
    )
