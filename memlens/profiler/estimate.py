"""``MemoryEstimate``: what a model needs, block by block, at each storage dtype.

One result type for both estimators: the analytic one (``analytic_estimate``, pure
Python, milliseconds; the language server calls it on every edit) and the exact one
(``memlens.profiler.meta.exact_estimate``, which builds the model on the meta device and
feeds the real parameter shapes through :func:`estimate_from_spec`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from memlens.errors import UsageError
from memlens.profiler.activations import ActivationPeak, prefill_peak
from memlens.profiler.architectures import ArchitectureSpec, BlockKind, describe
from memlens.profiler.tensors import (
    DEFAULT_GROUP_SIZE,
    StorageDtype,
    TensorKind,
    check_group_size,
    int4_group_size,
)

Source = Literal["analytic", "meta", "measured"]
DEFAULT_CONTEXT = 4096
MAX_CONTEXT = 1 << 24  # 16M tokens: beyond any released model's context
MAX_BATCH = 1 << 16


@dataclass(slots=True)
class LayerMemory:
    """One block's memory. Bytes are exact integers; activations are an estimate.

    Plain (not frozen) so that building one per layer stays cheap; treat as read-only.
    """

    name: str
    kind: str
    params: int
    bytes_by_dtype: dict[str, int]
    """Weight bytes of this block stored as each requested dtype."""
    kv_bytes_per_token: int
    """KV-cache bytes this block adds per token per sequence (0 for non-attention)."""
    activation_bytes: int
    """Transient bytes while this block runs a prefill of ``context × batch``."""
    kv_cache_bytes: int = 0
    """KV-cache bytes this block holds for ``context × batch``."""
    tied_to: str | None = None
    sliding_window: int | None = None


@dataclass(frozen=True)
class DeviceFit:
    """Whether the estimate fits one memory pool of this machine."""

    device: str
    name: str
    capacity_bytes: int
    fits: bool


@dataclass(frozen=True)
class MemoryEstimate:
    """The memory a model needs at one dtype (DESIGN.md §4 contract).

    ``total_bytes`` = weights + KV cache for ``context × batch`` + the transient peak of a
    prefill of ``context × batch`` (activations, plus the prefill keys and values that
    sliding-window layers hold until the first decode step).
    """

    model: str
    dtype: str
    total_bytes: int
    layers: tuple[LayerMemory, ...]
    kv_bytes_per_token: int
    activations_bytes: int
    exact: bool
    source: Source
    family: str
    model_class: str
    params: int
    weight_bytes: int
    kv_cache_bytes: int
    context: int
    batch: int
    group_size: int
    notes: tuple[str, ...] = ()
    fits: tuple[DeviceFit, ...] = field(default=())
    load_peak_bytes: int = 0
    """Peak of loading the weights (``weight_bytes`` is their size at rest). Float dtypes
    load as they rest; INT8/INT4 loaded in one step (``load_model(DIR, weights=…)``)
    peak at the compressed weights plus the largest tensor read in fp32 and cast to the
    compute dtype. Loading in fp32 and then calling ``compress_`` peaks at the fp32
    estimate's ``weight_bytes`` instead."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the CLI's ``--json`` and the worker protocol)."""
        return asdict(self)


def estimate_from_json(data: dict[str, Any]) -> MemoryEstimate:
    """The inverse of :meth:`MemoryEstimate.to_json` (a worker result back to an object)."""
    fields = dict(data)
    fields["layers"] = tuple(LayerMemory(**layer) for layer in data["layers"])
    fields["fits"] = tuple(DeviceFit(**fit) for fit in data.get("fits", ()))
    fields["notes"] = tuple(data.get("notes", ()))
    return MemoryEstimate(**fields)


def check_shape(context: int, batch: int) -> None:
    """Raise UsageError for a context or batch no run could have."""
    if not 1 <= context <= MAX_CONTEXT:
        raise UsageError(f"--context must be between 1 and {MAX_CONTEXT} tokens, got {context}")
    if not 1 <= batch <= MAX_BATCH:
        raise UsageError(f"--batch must be between 1 and {MAX_BATCH}, got {batch}")


def default_context(spec: ArchitectureSpec) -> int:
    """4096 tokens, or the model's maximum when that is shorter."""
    limit = spec.dims.max_positions
    return min(DEFAULT_CONTEXT, limit) if limit else DEFAULT_CONTEXT


def kv_cache_bytes(
    spec: ArchitectureSpec, dtype: StorageDtype, context: int, batch: int, windowed: bool = True
) -> int:
    """Bytes every layer's KV cache holds after ``context`` tokens of ``batch`` sequences.

    ``windowed=False`` ignores sliding windows: right after a prefill, transformers'
    sliding layers keep views into the full prefill keys and values, so the full storage
    stays allocated until the first decode step.
    """
    elements = sum(
        a.kv_elements_per_token() * (a.cached_tokens(context) if windowed else context)
        for a in spec.attention_layers
    )
    return elements * batch * dtype.float_bytes


def activation_peak(
    spec: ArchitectureSpec, dtype: StorageDtype, batch: int, tokens: int
) -> ActivationPeak:
    """The activation peak of a forward over ``batch × tokens`` at ``dtype``'s compute dtype."""
    return prefill_peak(
        spec.dims,
        batch,
        tokens,
        dtype.float_bytes,
        causal=spec.causal,
        lm_head=any(b.kind is BlockKind.LM_HEAD for b in spec.blocks),
        sliding=any(a.sliding_window for a in spec.attention_layers),
    )


def prefill_transient_bytes(
    spec: ArchitectureSpec, dtype: StorageDtype, batch: int, tokens: int
) -> int:
    """Bytes a forward over ``batch × tokens`` holds on top of weights and the windowed KV
    cache: the activation peak plus the keys and values sliding layers keep until the
    next step."""
    beyond_window = kv_cache_bytes(spec, dtype, tokens, batch, windowed=False) - kv_cache_bytes(
        spec, dtype, tokens, batch
    )
    return activation_peak(spec, dtype, batch, tokens).total_bytes + beyond_window


_SOURCE_BYTES = 4
"""A checkpoint's tensors are assumed fp32 as they are read (the safe side)."""


def load_peak_bytes(spec: ArchitectureSpec, dtype: StorageDtype, weights: int) -> int:
    """Peak of loading ``weights`` bytes at ``dtype`` (see ``MemoryEstimate.load_peak_bytes``)."""
    if not dtype.is_quantized:
        return weights
    largest = max((t.numel for b in spec.blocks for t in b.tensors), default=0)
    return weights + largest * (_SOURCE_BYTES + dtype.compute_dtype.float_bytes)


def weight_bytes(spec: ArchitectureSpec, dtype: StorageDtype, group_size: int) -> int:
    """Exact bytes of every parameter stored as ``dtype``, tied weights once."""
    return sum(t.nbytes(dtype, group_size) for b in spec.blocks for t in b.tensors)


def generate_peak_bytes(
    spec: ArchitectureSpec,
    dtype: StorageDtype,
    batch: int,
    prompt_tokens: int,
    new_tokens: int,
    group_size: int = DEFAULT_GROUP_SIZE,
) -> int:
    """Predicted peak of ``generate()``: weights plus the larger of the prefill (KV of the
    prompt plus its transients) and the last decode step (KV of everything, one token)."""
    prefill = kv_cache_bytes(spec, dtype, prompt_tokens, batch) + prefill_transient_bytes(
        spec, dtype, batch, prompt_tokens
    )
    last_step = kv_cache_bytes(
        spec, dtype, prompt_tokens + new_tokens, batch
    ) + prefill_transient_bytes(spec, dtype, batch, 1)
    return weight_bytes(spec, dtype, group_size) + max(prefill, last_step)


def int4_group_notes(spec: ArchitectureSpec, group_size: int) -> list[str]:
    """What INT4 with ``group_size`` really stores where a matrix's width does not divide
    by it: a smaller group, or INT8 (the rule :func:`int4_group_size` shares with
    ``compress_``)."""
    taken: dict[tuple[int, int | None], int] = {}  # (width, group or None) → matrices
    for block in spec.blocks:
        for tensor in block.tensors:
            if tensor.kind is not TensorKind.MATRIX:
                continue
            group = int4_group_size(tensor.out_features, tensor.in_features, group_size)
            if group != group_size:
                key = (tensor.in_features, group)
                taken[key] = taken.get(key, 0) + 1
    return [
        f"INT4: group {group_size} does not divide width {width} of {count} matrices: "
        + (f"they use group {group}" if group else "they stay INT8")
        for (width, group), count in sorted(taken.items(), key=lambda item: -item[1])
    ]


def _block_sizes(
    spec: ArchitectureSpec, dtypes: Sequence[StorageDtype], group_size: int
) -> list[tuple[int, dict[str, int]]]:
    """Per block, its parameters and its weight bytes at each dtype. Identical layers
    share one tensor tuple, so each distinct tuple is summed once (this keeps the
    estimate sub-millisecond)."""
    by_tuple: dict[int, tuple[int, dict[str, int]]] = {}
    result = []
    for block in spec.blocks:
        key = id(block.tensors)
        if key not in by_tuple:
            by_tuple[key] = (
                sum(t.numel for t in block.tensors),
                {d.value: sum(t.nbytes(d, group_size) for t in block.tensors) for d in dtypes},
            )
        result.append(by_tuple[key])
    return result


def _layer_memory(
    spec: ArchitectureSpec,
    sizes: list[tuple[int, dict[str, int]]],
    dtype: StorageDtype,
    context: int,
    batch: int,
    peak: ActivationPeak,
) -> tuple[LayerMemory, ...]:
    activation_by_kind = {
        BlockKind.DECODER_LAYER: peak.layer_bytes,
        BlockKind.ENCODER_LAYER: peak.layer_bytes,
        BlockKind.LM_HEAD: peak.logits_bytes,
    }
    layers = []
    for block, (params, block_bytes) in zip(spec.blocks, sizes, strict=True):
        attention = block.attention
        per_token = attention.kv_elements_per_token() * dtype.float_bytes if attention else 0
        layers.append(
            LayerMemory(
                name=block.name,
                kind=block.kind.value,
                params=params,
                bytes_by_dtype=block_bytes,
                kv_bytes_per_token=per_token,
                activation_bytes=activation_by_kind.get(block.kind, 0),
                kv_cache_bytes=per_token * attention.cached_tokens(context) * batch
                if attention
                else 0,
                tied_to=block.tied_to,
                sliding_window=attention.sliding_window if attention else None,
            )
        )
    return tuple(layers)


def estimate_from_spec(
    spec: ArchitectureSpec,
    model: str,
    dtypes: Sequence[StorageDtype],
    *,
    group_size: int = DEFAULT_GROUP_SIZE,
    context: int | None = None,
    batch: int = 1,
    source: Source = "analytic",
    exact: bool = True,
    notes: Sequence[str] = (),
) -> list[MemoryEstimate]:
    """One MemoryEstimate per dtype in ``dtypes`` for the model ``spec`` describes."""
    check_group_size(group_size)
    context = default_context(spec) if context is None else context
    check_shape(context, batch)
    all_notes = [*spec.notes, *notes]
    if spec.dims.max_positions and context > spec.dims.max_positions:
        all_notes.append(
            f"context {context} exceeds the model's {spec.dims.max_positions} positions"
        )
    if StorageDtype.INT4 in dtypes:
        all_notes.extend(int4_group_notes(spec, group_size))
    sizes = _block_sizes(spec, dtypes, group_size)
    params = sum(block_params for block_params, _ in sizes)
    by_compute_dtype: dict[StorageDtype, tuple[ActivationPeak, int]] = {}
    estimates = []
    for dtype in dtypes:
        compute = dtype.compute_dtype
        if compute not in by_compute_dtype:
            by_compute_dtype[compute] = (
                activation_peak(spec, compute, batch, context),
                prefill_transient_bytes(spec, compute, batch, context),
            )
        peak, transient = by_compute_dtype[compute]
        layers = _layer_memory(spec, sizes, dtype, context, batch, peak)
        weights = sum(block_bytes[dtype.value] for _, block_bytes in sizes)
        kv = sum(layer.kv_cache_bytes for layer in layers)
        estimates.append(
            MemoryEstimate(
                model=model,
                dtype=dtype.value,
                total_bytes=weights + kv + transient,
                layers=layers,
                kv_bytes_per_token=sum(layer.kv_bytes_per_token for layer in layers),
                activations_bytes=transient,
                exact=exact,
                source=source,
                family=spec.family,
                model_class=spec.model_class,
                params=params,
                weight_bytes=weights,
                kv_cache_bytes=kv,
                context=context,
                batch=batch,
                group_size=group_size,
                notes=tuple(all_notes),
                load_peak_bytes=load_peak_bytes(spec, dtype, weights),
            )
        )
    return estimates


def analytic_estimate(
    config: Mapping[str, Any],
    model: str,
    dtypes: Sequence[StorageDtype] = (StorageDtype.BF16,),
    *,
    bare: bool = False,
    **options: Any,
) -> list[MemoryEstimate]:
    """The analytic estimate of a config dict (pure Python; raises
    UnsupportedArchitectureError for families without formulas); ``bare``: of the bare
    model ``AutoModel`` builds, without the task head ``architectures`` names."""
    spec = describe(config, source=model, bare=bare)
    return estimate_from_spec(spec, model, dtypes, **options)
