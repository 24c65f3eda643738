"""The training loop the techniques compose in: next-token loss on random windows,
optional gradient checkpointing, INT8 saved activations and L0 gates (fixed at what pruning
keeps for their last `recover_fraction` of the steps), any registered
optimizer; per-step progress and a final :class:`TrainReport`.

Peak memory is measured on the second step, when the optimizer state exists and stays
resident (the first step's own peak misses it), from the profiler's allocation events
(``memlens/profiler/measure.py``): the weights and optimizer state held before the step
plus the most the step allocated on top of them.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from memlens.errors import UsageError
from memlens.profiler.measure import measure_peak, module_bytes
from memlens.train.data import TokenData
from memlens.train.int8_activations import (
    Int8ActivationConfig,
    SavedBytes,
    count_saved_bytes,
    int8_activations,
)
from memlens.train.optimizer8bit import optimizer_state_bytes
from memlens.train.optimizers import build_optimizer
from memlens.train.pruning import PruningGates


@dataclass(frozen=True)
class TrainConfig:
    """One training run's settings."""

    steps: int = 100
    lr: float = 1e-4
    batch_size: int = 4
    seq_len: int = 128
    """Tokens per training window."""
    seed: int = 0
    optimizer: str = "adamw"
    """A name from ``memlens.train.optimizers.OPTIMIZERS``."""
    grad_checkpointing: bool = False
    int8_activations: Int8ActivationConfig | None = None
    version: int = 1

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.seq_len < 2 or self.lr <= 0:
            raise UsageError(
                "--steps and --batch-size must be ≥ 1, --seq-len ≥ 2 and --lr positive"
            )


@dataclass(frozen=True)
class StepStats:
    """Progress after one optimizer step."""

    step: int
    steps: int
    loss: float
    tokens_per_s: float
    peak_bytes: int
    """Tensor memory peak of the measured step (resident + its own), bytes; 0 before."""


@dataclass(frozen=True)
class TrainReport:
    """What a training run measured. Bytes are bytes; losses are mean next-token
    cross-entropy (nats) on the held-out windows."""

    steps: int
    trainable_parameters: int
    parameters: int
    eval_loss_before: float
    eval_loss_after: float
    final_train_loss: float
    tokens_per_s: float
    peak_step_bytes: int
    """Tensor memory at one step's peak: weights and optimizer state plus what the step
    allocated on top (gradients, activations, temporaries)."""
    parameter_bytes: int
    gradient_bytes: int
    optimizer_bytes: int
    activation_bytes: int
    """Bytes autograd held for backward in one step, as stored."""
    activation_bytes_full: int
    """The same tensors at their own dtype (what they take without INT8 storage)."""
    gate_sparsity: float | None = None
    """Expected share of gated parameters switched off at the end (with L0 gates)."""

    def to_json(self) -> dict[str, Any]:
        """The CLI's ``--json`` form."""
        return {"kind": "train", **asdict(self)}


Progress = Callable[[StepStats], None]


def _loss(model: nn.Module, windows: torch.Tensor) -> torch.Tensor:
    logits = model(input_ids=windows[:, :-1]).logits  # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1).float(), windows[:, 1:].reshape(-1))


@torch.no_grad()
def eval_loss(model: nn.Module, data: TokenData) -> float:
    """Mean next-token loss on the held-out windows (eval mode, restored after)."""
    was_training = model.training
    model.eval()
    windows = data.eval_windows()
    loss = float(_loss(model, windows))
    model.train(was_training)
    return loss


@contextlib.contextmanager
def _saving(model: nn.Module, config: Int8ActivationConfig | None) -> Iterator[SavedBytes]:
    if config is None:
        with count_saved_bytes(model) as saved:
            yield saved
    else:
        with int8_activations(model, config) as saved:
            yield saved


def _parameter_groups(model: nn.Module, gates: PruningGates | None) -> list[dict[str, Any]]:
    params = [p for p in model.parameters() if p.requires_grad]
    groups: list[dict[str, Any]] = [{"params": params}] if params else []
    if gates is not None:
        groups.append({"params": list(gates.parameters()), "lr": gates.config.gate_lr})
    if not groups:
        raise UsageError("nothing to train: every parameter is frozen")
    return groups


def _recovering(gates: PruningGates, step: int, steps: int) -> bool:
    """Whether ``step`` (from 1) lies in the last ``recover_fraction`` of ``steps``."""
    return step > steps - round(steps * gates.config.recover_fraction)


def train(
    model: nn.Module,
    data: TokenData,
    config: TrainConfig,
    gates: PruningGates | None = None,
    on_step: Progress | None = None,
) -> TrainReport:
    """Train ``model`` in place for ``config.steps`` steps; see the module docstring."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    if config.grad_checkpointing:
        enable = getattr(model, "gradient_checkpointing_enable", None)
        if not callable(enable):
            raise UsageError(f"{type(model).__name__} has no gradient checkpointing")
        enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    with gates.opened() if gates is not None else contextlib.nullcontext():
        before = eval_loss(model, data)
    optimizer = build_optimizer(config.optimizer, _parameter_groups(model, gates), config.lr)
    model.train()
    if gates is not None:
        gates.train()
    saved = SavedBytes()
    loss_value = math.nan
    peak = gradient_bytes = 0
    started = time.perf_counter()
    for step in range(1, config.steps + 1):
        if gates is not None and not gates.fixed and _recovering(gates, step, config.steps):
            gates.fix_()
        windows = data.batch(config.batch_size, generator)

        def one_step(windows: torch.Tensor = windows) -> tuple[float, SavedBytes, int]:
            with _saving(model, config.int8_activations) as counted:
                loss = _loss(model, windows)
                if gates is not None:
                    loss = loss + gates.penalty()
            loss.backward()  # type: ignore[no-untyped-call]
            grads = _gradient_bytes(model, gates)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return float(loss.detach()), counted, grads

        if step == min(2, config.steps):
            resident = module_bytes(model) + optimizer_state_bytes(optimizer)
            (loss_value, saved, gradient_bytes), measured = measure_peak(
                one_step, resident_bytes=resident
            )
            peak = measured.peak_bytes
        else:
            loss_value, _, _ = one_step()
        if on_step is not None:
            elapsed = time.perf_counter() - started
            tokens = step * config.batch_size * config.seq_len
            on_step(StepStats(step, config.steps, loss_value, tokens / elapsed, peak))
    elapsed = time.perf_counter() - started
    model.eval()
    if gates is not None:
        gates.eval()
    if config.grad_checkpointing:
        model.gradient_checkpointing_disable()  # type: ignore[operator]
    return TrainReport(
        steps=config.steps,
        trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
        parameters=sum(p.numel() for p in model.parameters()),
        eval_loss_before=before,
        eval_loss_after=eval_loss(model, data),
        final_train_loss=loss_value,
        tokens_per_s=config.steps * config.batch_size * config.seq_len / elapsed,
        peak_step_bytes=peak,
        parameter_bytes=module_bytes(model),
        gradient_bytes=gradient_bytes,
        optimizer_bytes=optimizer_state_bytes(optimizer),
        activation_bytes=saved.stored,
        activation_bytes_full=saved.original,
        gate_sparsity=None if gates is None else float(gates.expected_sparsity().detach()),
    )


def _gradient_bytes(model: nn.Module, gates: PruningGates | None) -> int:
    params = [*model.parameters(), *(gates.parameters() if gates is not None else ())]
    return sum(p.grad.numel() * p.grad.element_size() for p in params if p.grad is not None)
