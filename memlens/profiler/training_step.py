"""Measured memory of one real training step (forward, backward, optimizer step).

A first step allocates the optimizer's states; the second is measured, so the figures are
the steady state the analytic estimate (``memlens.profiler.training``) predicts. The peak
comes from allocation events on the CPU and the caching allocator on CUDA
(``measure_peak``); the saved activations from ``torch.autograd.graph.saved_tensors_hooks``
(each storage once, parameters excluded). Imports torch: never imported by the language
server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import torch

from memlens.errors import DependencyError, UsageError
from memlens.profiler.measure import measure_peak
from memlens.profiler.training import default_targets
from memlens.profiler.training_config import (
    Optimizer,
    Precision,
    TrainingConfig,
    TrainMethod,
)

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class TrainingStepMeasurement:
    """What one steady-state step held, in bytes (``kind: "training-measured"``)."""

    device: str
    config: dict[str, Any]
    params: int
    trainable_params: int
    weight_bytes: int
    """Every parameter and buffer (adapters included), each storage once."""
    gradient_bytes: int
    """The gradients after backward."""
    optimizer_bytes: int
    """The optimizer's state tensors."""
    activation_bytes: int
    """Tensors autograd saved for backward during the forward (parameters excluded)."""
    resident_bytes: int
    """Weights plus optimizer states before the step."""
    peak_bytes: int
    """The step's peak: resident plus the most it held on top."""
    loss: float
    kind: str = "training-measured"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the CLI's ``--json`` and the worker protocol)."""
        return asdict(self)


def _tensor_bytes(tensors: Iterator[torch.Tensor]) -> int:
    seen: set[int] = set()
    total = 0
    for tensor in tensors:
        storage = tensor.untyped_storage()
        if storage.data_ptr() in seen or tensor.is_meta:
            continue
        seen.add(storage.data_ptr())
        total += storage.nbytes()
    return total


def prepare_model(model: Any, config: TrainingConfig) -> Any:
    """Put a causal LM in training mode for ``config``: LoRA adapters (peft), gradient
    checkpointing. Raises UsageError for what one CPU step cannot measure."""
    if config.method is TrainMethod.QLORA:
        raise UsageError(
            "--train qlora needs bitsandbytes' 4-bit layers on a CUDA GPU; measure lora "
            "here, or estimate qlora with `memlens estimate --train qlora`"
        )
    if config.precision is not Precision.FP32:
        raise UsageError(
            f"--precision {config.precision} is estimated, not measured: profile --train "
            "runs fp32 steps"
        )
    model.train()
    if config.trains_adapters:
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise DependencyError(
                "measuring LoRA needs peft: pip install 'memlens[dev]' or pip install peft"
            ) from None
        family = str(getattr(model.config, "model_type", ""))
        targets = list(config.lora_targets or default_targets(family))
        try:
            model = get_peft_model(
                model, LoraConfig(r=config.lora_rank, target_modules=targets, lora_dropout=0.0)
            )
        except ValueError as error:
            raise UsageError(f"LoRA targets {targets}: {error}") from None
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        if config.trains_adapters:
            model.enable_input_require_grads()
    return model


def make_optimizer(model: Any, config: TrainingConfig) -> torch.optim.Optimizer:
    """The optimizer ``config`` names over the parameters that train."""
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer is Optimizer.ADAMW:
        return torch.optim.AdamW(params, lr=1e-4)
    if config.optimizer is Optimizer.SGD:
        return torch.optim.SGD(params, lr=1e-4)
    if config.optimizer is Optimizer.ADAFACTOR:
        from transformers.optimization import Adafactor

        optimizer: torch.optim.Optimizer = Adafactor(  # type: ignore[no-untyped-call]
            params, lr=None, relative_step=True, scale_parameter=True
        )
        return optimizer
    raise UsageError(
        "--optimizer adamw8bit needs bitsandbytes on a CUDA GPU; it is estimated, not measured"
    )


def measure_training_step(
    model: Any,
    config: TrainingConfig,
    vocab_size: int,
    progress: Progress | None = None,
    seed: int = 0,
) -> TrainingStepMeasurement:
    """Prepare ``model`` for ``config``, run a warm-up step and measure the next one."""
    report = progress or (lambda message, percent: None)
    model = prepare_model(model, config)
    optimizer = make_optimizer(model, config)
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab_size, (config.batch, config.seq), generator=generator).to(device)

    def step() -> float:
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    report("Warm-up step (allocates the optimizer's states)", 30)
    step()
    weights = _tensor_bytes(iter([*model.parameters(), *model.buffers()]))
    states = _tensor_bytes(
        t for state in optimizer.state.values() for t in state.values() if torch.is_tensor(t)
    )
    report("Measured step", 60)
    loss, measured = measure_peak(step, device, resident_bytes=weights + states)
    report("Counting gradients and saved activations", 90)
    gradients, saved = _gradients_and_saved(model, ids)
    trainable = [p for p in model.parameters() if p.requires_grad]
    return TrainingStepMeasurement(
        device=str(device),
        config=config.to_json(),
        params=sum(p.numel() for p in model.parameters()),
        trainable_params=sum(p.numel() for p in trainable),
        weight_bytes=weights,
        gradient_bytes=gradients,
        optimizer_bytes=states,
        activation_bytes=saved,
        resident_bytes=measured.resident_bytes,
        peak_bytes=measured.peak_bytes,
        loss=loss,
    )


@contextmanager
def _saved_storages(exclude: set[int], sizes: dict[int, int]) -> Iterator[None]:
    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in exclude:
            sizes[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield


def _gradients_and_saved(model: Any, ids: torch.Tensor) -> tuple[int, int]:
    """One more forward and backward, outside the measured step: the bytes autograd saves
    and the gradients backward leaves."""
    exclude = {p.untyped_storage().data_ptr() for p in model.parameters()}
    sizes: dict[int, int] = {}
    with _saved_storages(exclude, sizes):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    gradients = _tensor_bytes(p.grad for p in model.parameters() if p.grad is not None)
    model.zero_grad(set_to_none=True)
    return gradients, sum(sizes.values())
