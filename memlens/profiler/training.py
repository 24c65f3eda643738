"""Training memory: weights, gradients, optimizer states, master weights, LoRA adapters and
the activations saved for backward, per block, and the peak of one training step.

Analytic and torch-free (the language server calls it). The step's peak is the steady
state (optimizer states already allocated by an earlier step): the resident model states
plus the largest of three moments,

- the start of backward: every saved activation plus the loss's logits temporaries;
- with gradient checkpointing, the recomputed forward of the last layer;
- the end of backward: all gradients plus one layer's saved activations;
- the optimizer step: all gradients and the optimizer's
  temporaries (two fp32 copies of the largest trainable tensor for a per-tensor AdamW).

Under sharding (``--devices N --sharding zero1|zero2|zero3|fsdp``) the model states split
as the ZeRO paper's formulas say (Rajbhandari et al., 2020, §5); activations do not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from memlens.errors import UsageError
from memlens.profiler.architectures import ArchitectureSpec, BlockKind, BlockSpec, describe
from memlens.profiler.architectures.spec import SavedForBackward
from memlens.profiler.estimate import DeviceFit
from memlens.profiler.tensors import TensorKind, TensorSpec
from memlens.profiler.training_config import (
    Optimizer,
    Sharding,
    TrainingConfig,
    TrainMethod,
)

TRAINING_ESTIMATE_VERSION = 1
Phase = Literal["backward start", "recomputation", "backward end", "optimizer step"]

# peft's default target_modules per family (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING).
_DEFAULT_TARGETS: Mapping[str, tuple[str, ...]] = {
    "gpt2": ("c_attn",),
    "phi3": ("qkv_proj",),
    "falcon": ("query_key_value",),
    "bert": ("query", "value"),
    "glm": ("query_key_value",),
}
_RANK_DEFAULT_TARGETS = ("q_proj", "v_proj")
ALL_LINEAR = "all-linear"
"""peft's shorthand: every linear layer except the output head."""
_ADAPTER_BYTES = 4  # peft keeps adapters in fp32 (autocast_adapter_dtype) under mixed precision
_MASTER_BYTES = 4
_FP32 = 4
_LABEL_BYTES = 8  # int64 labels the loss keeps
_NF4_BLOCK = 64  # bitsandbytes NF4: 4-bit values, one 8-bit absmax per 64 (double quant)
_NF4_SECOND_BLOCK = 256  # and one fp32 scale per 256 of those absmax values
_ADAM_STEP_BYTES = 4  # torch's AdamW keeps its step count as an fp32 scalar per tensor
_ADAM8_BLOCK = 256
_ADAM8_MIN_SIZE = 4096


@dataclass(frozen=True)
class TrainingBlock:
    """One block's training memory, unsharded. Bytes are exact integers except the
    activations, which follow the family's formula."""

    name: str
    kind: str
    params: int
    trainable_params: int
    """Parameters the optimizer updates (the adapters' under LoRA)."""
    weight_bytes: int
    """The block's frozen or trained weights (NF4 for QLoRA's layer linears)."""
    adapter_params: int
    adapter_bytes: int
    gradient_bytes: int
    optimizer_bytes: int
    master_bytes: int
    """fp32 master copies of what trains under mixed precision."""
    activation_bytes: int
    """Saved for backward under this configuration."""
    activation_bytes_plain: int
    """Saved for backward without gradient checkpointing."""
    activation_bytes_checkpointed: int
    """Saved for backward with gradient checkpointing (the layer's input only)."""


@dataclass(frozen=True)
class TrainingEstimate:
    """The memory of one training step (DESIGN.md §4: a training estimate adds gradients,
    optimizer states, master weights and trainable parameters per block). Totals are per
    device; ``blocks`` are unsharded."""

    model: str
    family: str
    model_class: str
    config: TrainingConfig
    params: int
    trainable_params: int
    adapter_params: int
    weight_bytes: int
    adapter_bytes: int
    gradient_bytes: int
    optimizer_bytes: int
    master_bytes: int
    model_state_bytes: int
    """Weights, adapters, gradients, optimizer states and master weights on one device."""
    activation_bytes: int
    activation_bytes_plain: int
    activation_bytes_checkpointed: int
    transient_bytes: int
    """What the step holds at its peak beyond the resident states (saved activations,
    gradients, logits, optimizer temporaries)."""
    peak_bytes: int
    peak_phase: Phase
    blocks: tuple[TrainingBlock, ...]
    source: str = "analytic"
    notes: tuple[str, ...] = ()
    fits: tuple[DeviceFit, ...] = field(default=())
    kind: str = "training"
    version: int = TRAINING_ESTIMATE_VERSION

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the CLI's ``--json`` and the worker protocol)."""
        data = asdict(self)
        data["config"] = self.config.to_json()
        return data


@dataclass(frozen=True)
class _Adapter:
    module: str
    in_features: int
    out_features: int

    def tensors(self, rank: int) -> tuple[TensorSpec, TensorSpec]:
        return (
            TensorSpec(f"{self.module}.lora_A", (rank, self.in_features), TensorKind.MATRIX),
            TensorSpec(f"{self.module}.lora_B", (self.out_features, rank), TensorKind.MATRIX),
        )


def default_targets(family: str) -> tuple[str, ...]:
    """peft's default LoRA target modules for a family."""
    return _DEFAULT_TARGETS.get(family, _RANK_DEFAULT_TARGETS)


def _module_name(block: BlockSpec, tensor: TensorSpec) -> str | None:
    """The nn.Linear module path of a 2-D weight matrix (None for anything else)."""
    if tensor.kind is not TensorKind.MATRIX or len(tensor.shape) != 2:
        return None
    if not tensor.name.endswith("weight"):
        return None
    local = tensor.name.removesuffix("weight").rstrip(".")
    return f"{block.name}.{local}" if local else block.name


def _matches(module: str, target: str) -> bool:
    return module == target or module.endswith("." + target)


def lora_adapters(spec: ArchitectureSpec, targets: Sequence[str]) -> dict[str, list[_Adapter]]:
    """Per block name, the adapters peft would add for ``targets`` (suffix match on module
    paths, as peft matches a list). Raises UsageError for a target matching no linear."""
    found: dict[str, list[_Adapter]] = {}
    used: set[str] = set()
    linear_names: set[str] = set()
    for block in spec.blocks:
        for tensor in block.tensors:
            module = _module_name(block, tensor)
            if module is None:
                continue
            linear_names.add(module.rsplit(".", 1)[-1])
            if ALL_LINEAR in targets:
                hit = block.kind is not BlockKind.LM_HEAD
                if hit:
                    used.add(ALL_LINEAR)
            else:
                hits = [t for t in targets if _matches(module, t)]
                used.update(hits)
                hit = bool(hits)
            if hit:
                found.setdefault(block.name, []).append(
                    _Adapter(module, tensor.in_features, tensor.out_features)
                )
    missing = [t for t in targets if t not in used]
    if missing:
        raise UsageError(
            f"LoRA target {', '.join(repr(t) for t in missing)} matches no linear module of "
            f"this {spec.family} model; its linear modules are: {', '.join(sorted(linear_names))}"
        )
    return found


def _optimizer_state_bytes(optimizer: Optimizer, tensor: TensorSpec) -> int:
    n = tensor.numel
    if optimizer is Optimizer.ADAMW:
        return 2 * _FP32 * n + _ADAM_STEP_BYTES
    if optimizer is Optimizer.ADAMW8BIT:
        if n < _ADAM8_MIN_SIZE:
            return 2 * _FP32 * n
        return 2 * (n + _FP32 * math.ceil(n / _ADAM8_BLOCK))
    if optimizer is Optimizer.ADAFACTOR:
        if len(tensor.shape) >= 2:
            rows = math.prod(tensor.shape[:-1])
            return _FP32 * (rows + tensor.shape[-1])
        return _FP32 * n
    return 0


def _nf4_bytes(numel: int) -> int:
    blocks = math.ceil(numel / _NF4_BLOCK)
    return math.ceil(numel / 2) + blocks + _FP32 * math.ceil(blocks / _NF4_SECOND_BLOCK)


def _weight_bytes(block: BlockSpec, tensor: TensorSpec, config: TrainingConfig) -> int:
    layer = block.kind in (BlockKind.DECODER_LAYER, BlockKind.ENCODER_LAYER)
    if config.method is TrainMethod.QLORA and layer and tensor.kind is TensorKind.MATRIX:
        return _nf4_bytes(tensor.numel)
    return tensor.numel * config.precision.compute_bytes


def _generic_saved(spec: ArchitectureSpec) -> SavedForBackward:
    """The Llama-style formula with every linear input saved, for unmeasured families."""
    d = spec.dims
    q_out, kv_out = d.num_heads * d.head_dim, d.num_kv_heads * d.head_dim
    return SavedForBackward(
        fixed=6 * d.hidden_size
        + 2 * q_out
        + 2 * kv_out
        + 4 * d.intermediate_size
        + d.num_heads
        + 2,
        score_heads=3 * d.num_heads if d.eager_attention else 0,
    )


def _layer_widths(
    saved: SavedForBackward,
    block: BlockSpec,
    config: TrainingConfig,
    adapters: Sequence[_Adapter],
) -> int:
    """Elements per position one layer saves for backward (without checkpointing)."""
    trains_all = config.method is TrainMethod.FULL
    adapted = {a.module for a in adapters}
    widths = saved.fixed + (saved.trained_norms if trains_all else 0)
    for names, width in saved.linear_inputs:
        modules = {f"{block.name}.{name}" for name in names}
        if trains_all or modules & adapted:
            widths += width
    return widths + config.lora_rank * len(adapters)


def _stream_bytes(spec: ArchitectureSpec, config: TrainingConfig, checkpointed: bool) -> int:
    """Bytes saved outside the layers: the loss's fp32 log-probabilities and int64 labels,
    the final norm and head inputs when they train, rotary tables, and with checkpointing
    under LoRA the embedding output (``enable_input_require_grads``)."""
    d = spec.dims
    positions = config.batch * config.seq
    cb = config.precision.compute_bytes
    total = positions * (d.vocab_size * _FP32 + _LABEL_BYTES)
    if config.method is TrainMethod.FULL:
        total += positions * (3 * d.hidden_size + 3) * cb
    elif checkpointed:
        total += positions * d.hidden_size * cb
    if d.rotary and not checkpointed:
        total += 2 * d.head_dim * config.seq * cb
    return total


@dataclass(frozen=True)
class _Totals:
    weights: int = 0
    adapters: int = 0
    gradients: int = 0
    optimizer: int = 0
    master: int = 0


def _shard(totals: _Totals, config: TrainingConfig) -> _Totals:
    """Per-device model states under ZeRO/FSDP (ZeRO paper §5.1–5.3: P_os, P_os+g,
    P_os+g+p)."""
    n = config.devices
    stage = {
        Sharding.NONE: 0,
        Sharding.ZERO1: 1,
        Sharding.ZERO2: 2,
        Sharding.ZERO3: 3,
        Sharding.FSDP: 3,
    }[config.sharding]
    return _Totals(
        weights=totals.weights // n if stage >= 3 else totals.weights,
        adapters=totals.adapters // n if stage >= 3 else totals.adapters,
        gradients=totals.gradients // n if stage >= 2 else totals.gradients,
        optimizer=totals.optimizer // n if stage >= 1 else totals.optimizer,
        master=totals.master // n if stage >= 1 else totals.master,
    )


def training_estimate_from_spec(
    spec: ArchitectureSpec, model: str, config: TrainingConfig
) -> TrainingEstimate:
    """The training estimate of the model ``spec`` describes under ``config``."""
    notes = list(spec.notes)
    adapters: dict[str, list[_Adapter]] = {}
    if config.trains_adapters:
        adapters = lora_adapters(spec, config.lora_targets or default_targets(spec.family))
    saved = spec.saved
    if saved is None:
        saved = _generic_saved(spec)
        notes.append(
            f"activations use the generic decoder formula: memlens has not measured "
            f"{spec.family}'s saved tensors"
        )
    positions = config.batch * config.seq
    cb = config.precision.compute_bytes
    mixed = cb != _FP32
    blocks: list[TrainingBlock] = []
    largest_trainable = 0
    one_layer_saved = 0
    for block in spec.blocks:
        block_adapters = adapters.get(block.name, [])
        adapter_tensors = [t for a in block_adapters for t in a.tensors(config.lora_rank)]
        trained = list(block.tensors) if config.method is TrainMethod.FULL else adapter_tensors
        trainable = sum(t.numel for t in trained)
        largest_trainable = max([largest_trainable, *(t.numel for t in trained)])
        gradient_each = cb if config.method is TrainMethod.FULL else _ADAPTER_BYTES
        is_layer = block.kind in (BlockKind.DECODER_LAYER, BlockKind.ENCODER_LAYER)
        plain = checkpointed = 0
        if is_layer:
            widths = _layer_widths(saved, block, config, block_adapters)
            plain = positions * (widths + saved.score_heads * config.seq) * cb
            checkpointed = positions * spec.dims.hidden_size * cb
            one_layer_saved = max(one_layer_saved, plain)
        adapter_params = sum(t.numel for t in adapter_tensors)
        blocks.append(
            TrainingBlock(
                name=block.name,
                kind=block.kind.value,
                params=block.params,
                trainable_params=trainable,
                weight_bytes=sum(_weight_bytes(block, t, config) for t in block.tensors),
                adapter_params=adapter_params,
                adapter_bytes=adapter_params * _ADAPTER_BYTES,
                gradient_bytes=trainable * gradient_each,
                optimizer_bytes=sum(_optimizer_state_bytes(config.optimizer, t) for t in trained),
                master_bytes=trainable * _MASTER_BYTES
                if mixed and config.method is TrainMethod.FULL
                else 0,
                activation_bytes=checkpointed if config.gradient_checkpointing else plain,
                activation_bytes_plain=plain,
                activation_bytes_checkpointed=checkpointed,
            )
        )
    blocks = _with_stream(
        blocks,
        _stream_bytes(spec, config, checkpointed=False),
        _stream_bytes(spec, config, checkpointed=True),
        config.gradient_checkpointing,
    )
    totals = _Totals(
        weights=sum(b.weight_bytes for b in blocks),
        adapters=sum(b.adapter_bytes for b in blocks),
        gradients=sum(b.gradient_bytes for b in blocks),
        optimizer=sum(b.optimizer_bytes for b in blocks),
        master=sum(b.master_bytes for b in blocks),
    )
    device = _shard(totals, config)
    states = device.weights + device.adapters + device.gradients + device.optimizer + device.master
    resident = states - device.gradients
    activations = sum(b.activation_bytes for b in blocks)
    stream = blocks[-1].activation_bytes if blocks else 0
    loss_saved = positions * (spec.dims.vocab_size * _FP32 + _LABEL_BYTES)
    # The loss's backward: the gradients of the fp32 log-probabilities and of the logits
    # (plus the fp32 upcast of bf16/fp16 logits).
    loss_temporaries = positions * spec.dims.vocab_size * (2 * _FP32 + (cb if mixed else 0))
    # A layer's backward: about two gradients of its widest activation at once.
    widest = max(spec.dims.intermediate_size, spec.dims.hidden_size)
    layer_temporaries = 2 * positions * widest * cb
    optimizer_temporaries = (
        0 if config.optimizer is Optimizer.SGD else 2 * _FP32 * largest_trainable
    )
    gathered = _gathered_layer_bytes(blocks, config)
    phases: dict[Phase, int] = {
        "backward start": activations
        + max(loss_temporaries, 0 if config.gradient_checkpointing else layer_temporaries)
        + gathered,
        # With checkpointing the last layer's forward runs again once the head is done.
        "recomputation": activations - stream + one_layer_saved + layer_temporaries + gathered
        if config.gradient_checkpointing
        else 0,
        # The loss's saved log-probabilities are gone by then.
        "backward end": device.gradients + one_layer_saved + stream - loss_saved + gathered,
        "optimizer step": device.gradients + optimizer_temporaries,
    }
    phase = max(phases, key=lambda name: phases[name])
    transient = phases[phase]
    return TrainingEstimate(
        model=model,
        family=spec.family,
        model_class=spec.model_class,
        config=config,
        params=spec.params,
        trainable_params=sum(b.trainable_params for b in blocks),
        adapter_params=sum(b.adapter_params for b in blocks),
        weight_bytes=device.weights,
        adapter_bytes=device.adapters,
        gradient_bytes=device.gradients,
        optimizer_bytes=device.optimizer,
        master_bytes=device.master,
        model_state_bytes=states,
        activation_bytes=activations,
        activation_bytes_plain=sum(b.activation_bytes_plain for b in blocks),
        activation_bytes_checkpointed=sum(b.activation_bytes_checkpointed for b in blocks),
        transient_bytes=transient,
        peak_bytes=resident + transient,
        peak_phase=phase,
        blocks=tuple(blocks),
        notes=tuple(notes),
    )


def _with_stream(
    blocks: list[TrainingBlock], plain: int, checkpointed: int, checkpointing: bool
) -> list[TrainingBlock]:
    """The last block (the LM head) carries what is saved outside the layers."""
    if not blocks:
        return blocks
    last = blocks[-1]
    return [
        *blocks[:-1],
        TrainingBlock(
            **{
                **asdict(last),
                "activation_bytes": last.activation_bytes
                + (checkpointed if checkpointing else plain),
                "activation_bytes_plain": last.activation_bytes_plain + plain,
                "activation_bytes_checkpointed": last.activation_bytes_checkpointed + checkpointed,
            }
        ),
    ]


def _gathered_layer_bytes(blocks: Sequence[TrainingBlock], config: TrainingConfig) -> int:
    """Under ZeRO-3/FSDP a device gathers one block's full weights while it runs."""
    if config.sharding not in (Sharding.ZERO3, Sharding.FSDP):
        return 0
    return max((b.weight_bytes for b in blocks), default=0)


def training_estimate(
    config_dict: Mapping[str, Any], model: str, config: TrainingConfig
) -> TrainingEstimate:
    """The analytic training estimate of a config dict (pure Python; raises
    UnsupportedArchitectureError for families without formulas)."""
    return training_estimate_from_spec(describe(config_dict, source=model), model, config)
