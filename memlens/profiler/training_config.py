"""``TrainingConfig``: one fine-tuning configuration, parsed in one place.

The CLI (``--train lora:r8 --optimizer adamw …``), the worker (``"train": {…}``) and the
language server build the same frozen, versioned config; every bad value raises a
UsageError that names it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from memlens.errors import UsageError

TRAINING_CONFIG_VERSION = 1
MAX_RANK = 1 << 14
MAX_TOKENS = 1 << 24
MAX_BATCH = 1 << 16
MAX_DEVICES = 1 << 16


class TrainMethod(StrEnum):
    """What trains."""

    FULL = "full"
    """Every parameter trains."""
    LORA = "lora"
    """Only low-rank adapters on the target linears train; the base stays frozen."""
    QLORA = "qlora"
    """LoRA over a base whose layer linears are stored as NF4 (4-bit, double-quantized)."""


class Optimizer(StrEnum):
    """The optimizer, by the state it keeps per trainable parameter."""

    ADAMW = "adamw"
    """Two fp32 moments per parameter (8 bytes)."""
    ADAMW8BIT = "adamw8bit"
    """Two 8-bit moments per parameter plus an fp32 scale per 256 (bitsandbytes-style);
    tensors under 4096 elements keep fp32 moments."""
    SGD = "sgd"
    """Plain SGD without momentum: no state."""
    ADAFACTOR = "adafactor"
    """Factored second moments: one fp32 value per row and per column of a matrix, one per
    element of a vector; no first moment."""


class Precision(StrEnum):
    """How weights, gradients and activations are held."""

    FP32 = "fp32"
    """Everything fp32 (4 bytes); no master copy."""
    BF16_MIXED = "bf16-mixed"
    """bf16 weights, gradients and activations with an fp32 master copy of what trains."""
    FP16_MIXED = "fp16-mixed"
    """As bf16-mixed, in IEEE half."""

    @property
    def compute_bytes(self) -> int:
        """Bytes per element of weights, gradients and activations."""
        return 4 if self is Precision.FP32 else 2


class Sharding(StrEnum):
    """How model states are split across ``devices`` data-parallel ranks."""

    NONE = "none"
    """Every device holds everything (plain data parallel)."""
    ZERO1 = "zero1"
    """DeepSpeed ZeRO stage 1: optimizer states (and master weights) sharded."""
    ZERO2 = "zero2"
    """ZeRO stage 2: optimizer states and gradients sharded."""
    ZERO3 = "zero3"
    """ZeRO stage 3: optimizer states, gradients and weights sharded."""
    FSDP = "fsdp"
    """PyTorch FSDP FULL_SHARD: shards as ZeRO stage 3 does."""


@dataclass(frozen=True)
class TrainingConfig:
    """One training step's configuration (CLI ``--train …``, the worker's ``"train"``)."""

    method: TrainMethod = TrainMethod.FULL
    lora_rank: int = 16
    """LoRA rank r (LoRA and QLoRA only)."""
    lora_targets: tuple[str, ...] | None = None
    """Module names the adapters wrap (peft's ``target_modules``); None: the family's
    peft default (``q_proj``, ``v_proj`` for Llama-style models, ``c_attn`` for GPT-2)."""
    optimizer: Optimizer = Optimizer.ADAMW
    precision: Precision = Precision.FP32
    gradient_checkpointing: bool = False
    batch: int = 1
    """Sequences per device per step."""
    seq: int = 512
    """Tokens per sequence."""
    devices: int = 1
    sharding: Sharding = Sharding.NONE
    version: int = TRAINING_CONFIG_VERSION

    def __post_init__(self) -> None:
        _check_range("--batch", self.batch, MAX_BATCH)
        _check_range("--seq", self.seq, MAX_TOKENS)
        _check_range("--devices", self.devices, MAX_DEVICES)
        if self.method is not TrainMethod.FULL:
            _check_range("the LoRA rank", self.lora_rank, MAX_RANK)
            if self.lora_targets is not None and not self.lora_targets:
                raise UsageError("--lora-targets is empty: name modules such as q_proj,v_proj")
        if self.sharding is not Sharding.NONE and self.devices < 2:
            raise UsageError(f"--sharding {self.sharding} needs --devices 2 or more")

    @property
    def trains_adapters(self) -> bool:
        """True for LoRA and QLoRA."""
        return self.method is not TrainMethod.FULL

    def describe(self) -> str:
        """``lora:r8 · adamw · fp32 · batch 4 × 512`` for titles and hints."""
        method = f"{self.method}:r{self.lora_rank}" if self.trains_adapters else "full"
        parts = [method, str(self.optimizer), str(self.precision)]
        if self.gradient_checkpointing:
            parts.append("grad checkpointing")
        parts.append(f"batch {self.batch} × {self.seq}")
        if self.devices > 1:
            parts.append(f"{self.devices} devices ({self.sharding})")
        return " · ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``--json`` output and the worker protocol)."""
        data = dataclasses.asdict(self)
        data["lora_targets"] = None if self.lora_targets is None else list(self.lora_targets)
        return data


def _check_range(name: str, value: int, limit: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise UsageError(f"{name} must be an integer between 1 and {limit}, got {value!r}")


def _choice(kind: type[StrEnum], value: Any, name: str) -> Any:
    try:
        return kind(str(value).strip().lower())
    except ValueError:
        valid = ", ".join(member.value for member in kind)
        raise UsageError(f"unknown {name} {value!r}: use one of {valid}") from None


def parse_method(text: str) -> tuple[TrainMethod, int | None]:
    """``full``, ``lora``, ``lora:r8``, ``qlora:r16`` → the method and the rank it states."""
    name, _, rank_text = text.strip().lower().partition(":")
    method = _choice(TrainMethod, name, "training method")
    if not rank_text:
        return method, None
    if method is TrainMethod.FULL:
        raise UsageError(f"--train {text!r}: a rank applies to lora or qlora only")
    digits = rank_text.removeprefix("r")
    if not digits.lstrip("-").isdigit():
        raise UsageError(f"--train {text!r}: write the rank as lora:r8")
    return method, int(digits)


def parse_targets(text: str) -> tuple[str, ...]:
    """``q_proj,v_proj`` → ``("q_proj", "v_proj")``."""
    return tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


def training_config(
    train: str,
    *,
    lora_targets: str | None = None,
    optimizer: str = "adamw",
    precision: str = "fp32",
    gradient_checkpointing: bool = False,
    batch: int = 1,
    seq: int = 512,
    devices: int = 1,
    sharding: str = "none",
) -> TrainingConfig:
    """A TrainingConfig from the CLI's option texts."""
    method, rank = parse_method(train)
    return TrainingConfig(
        method=method,
        lora_rank=16 if rank is None else rank,
        lora_targets=None if lora_targets is None else parse_targets(lora_targets),
        optimizer=_choice(Optimizer, optimizer, "optimizer"),
        precision=_choice(Precision, precision, "precision"),
        gradient_checkpointing=gradient_checkpointing,
        batch=batch,
        seq=seq,
        devices=devices,
        sharding=_choice(Sharding, sharding, "sharding"),
    )


def config_from_json(data: Any) -> TrainingConfig:
    """The inverse of :meth:`TrainingConfig.to_json` (the worker's ``"train"`` param);
    missing keys take their defaults, unknown keys and bad values raise UsageError."""
    if not isinstance(data, dict):
        raise UsageError('\'train\' must be an object such as {"method": "lora"}')
    fields = {f.name for f in dataclasses.fields(TrainingConfig)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise UsageError(f"'train' has unknown keys: {', '.join(unknown)}")
    version = data.get("version", TRAINING_CONFIG_VERSION)
    if version != TRAINING_CONFIG_VERSION:
        raise UsageError(
            f"'train' version {version!r} is not supported (this memlens reads version "
            f"{TRAINING_CONFIG_VERSION})"
        )
    targets = data.get("lora_targets")
    if targets is not None and (
        not isinstance(targets, list) or not all(isinstance(t, str) for t in targets)
    ):
        raise UsageError("'lora_targets' must be a list of module names")
    flag = data.get("gradient_checkpointing", False)
    if not isinstance(flag, bool):
        raise UsageError("'gradient_checkpointing' must be true or false")
    return TrainingConfig(
        method=_choice(TrainMethod, data.get("method", "full"), "training method"),
        lora_rank=data.get("lora_rank", 16),
        lora_targets=None if targets is None else tuple(targets),
        optimizer=_choice(Optimizer, data.get("optimizer", "adamw"), "optimizer"),
        precision=_choice(Precision, data.get("precision", "fp32"), "precision"),
        gradient_checkpointing=flag,
        batch=data.get("batch", 1),
        seq=data.get("seq", 512),
        devices=data.get("devices", 1),
        sharding=_choice(Sharding, data.get("sharding", "none"), "sharding"),
    )
