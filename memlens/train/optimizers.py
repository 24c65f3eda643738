"""The optimizers ``--optimizer`` names, by registry: each builds from parameter groups
and a learning rate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from memlens.errors import UsageError
from memlens.train.offload import CpuOffloadAdamW
from memlens.train.optimizer8bit import AdamW8bit

Groups = list[dict[str, Any]]
_BUILDERS: dict[str, Callable[[Groups, float], torch.optim.Optimizer]] = {}


def registers(
    name: str,
) -> Callable[
    [Callable[[Groups, float], torch.optim.Optimizer]],
    Callable[[Groups, float], torch.optim.Optimizer],
]:
    """Register how ``--optimizer NAME`` is built."""

    def add(
        builder: Callable[[Groups, float], torch.optim.Optimizer],
    ) -> Callable[[Groups, float], torch.optim.Optimizer]:
        _BUILDERS[name] = builder
        return builder

    return add


@registers("adamw")
def _adamw(groups: Groups, lr: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=lr, weight_decay=0.0)


@registers("adamw8bit")
def _adamw8bit(groups: Groups, lr: float) -> torch.optim.Optimizer:
    return AdamW8bit(groups, lr=lr, weight_decay=0.0)


@registers("adamw-offload")
def _offload(groups: Groups, lr: float) -> torch.optim.Optimizer:
    if len(groups) != 1:
        raise UsageError("--optimizer adamw-offload takes one parameter group (no --prune)")
    return CpuOffloadAdamW(groups[0]["params"], lr=lr, weight_decay=0.0)


OPTIMIZERS = tuple(_BUILDERS)
"""The names ``--optimizer`` accepts."""


def build_optimizer(name: str, groups: Groups, lr: float) -> torch.optim.Optimizer:
    """The optimizer ``name`` over ``groups`` (a group's own ``lr`` wins)."""
    builder = _BUILDERS.get(name)
    if builder is None:
        raise UsageError(f"--optimizer {name!r}: use one of {', '.join(OPTIMIZERS)}")
    return builder(groups, lr)
