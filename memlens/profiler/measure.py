"""Measured memory of a real run.

On the CPU the peak comes from the profiler's allocation events (every tensor allocation
and free, in order), on CUDA from the caching allocator's statistics; neither is an RSS
guess. Imports torch, so the language server never imports this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch.profiler import ProfilerActivity, profile

T = TypeVar("T")


@dataclass(frozen=True)
class PeakMeasurement:
    """Tensor memory of one call, in bytes.

    ``resident_bytes`` were allocated before the call and still held (weights, buffers);
    ``peak_extra_bytes`` is the most the call held on top of them at any moment.
    """

    device: str
    resident_bytes: int
    peak_extra_bytes: int

    @property
    def peak_bytes(self) -> int:
        """Resident plus the call's own peak."""
        return self.resident_bytes + self.peak_extra_bytes


def module_bytes(module: torch.nn.Module, seen: set[int] | None = None) -> int:
    """Bytes of a module's parameters and buffers, each shared tensor counted once
    (also across calls that pass the same ``seen`` set of data pointers)."""
    seen = set() if seen is None else seen
    total = 0
    for tensor in (*module.parameters(), *module.buffers()):
        if tensor.data_ptr() in seen or tensor.is_meta:
            continue
        seen.add(tensor.data_ptr())
        total += tensor.numel() * tensor.element_size()
    for child in module.modules():  # weights held outside tensors (fbgemm's packed form)
        packed_bytes = getattr(child, "packed_bytes", None)
        total += packed_bytes() if callable(packed_bytes) else 0
    return total


@dataclass(frozen=True)
class LayerMeasurement:
    """Measured memory of one block (an element of the layer list, or another module
    that holds tensors), in bytes."""

    name: str
    weight_bytes: int
    """Parameters and buffers it holds, compressed formats included; a tensor shared with
    an earlier block (a tied head) counts there only."""
    activation_bytes: int
    """The largest output it produced during the run."""


def _layer_container(model: torch.nn.Module) -> str | None:
    lists = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.ModuleList) and len(module)
    ]
    if not lists:
        return None
    name: str = max(lists, key=lambda item: module_bytes(item[1]))[0]
    return name


def block_names(model: torch.nn.Module) -> list[str]:
    """Blocks in model order: each layer of the largest layer list, and every other
    outermost module that holds tensors of its own."""
    container = _layer_container(model)
    names: list[str] = []
    for name, module in model.named_modules():
        if container and name.startswith(container + "."):
            block = ".".join(name.split(".")[: container.count(".") + 2])
        elif any(name.startswith(outer + ".") for outer in names):
            continue  # its tensors count in the enclosing block
        elif any(True for _ in _own_tensors(module)):
            block = name
        else:
            continue
        if block not in names:
            names.append(block)
    return names


def _own_tensors(module: torch.nn.Module) -> Iterator[torch.Tensor]:
    yield from module.parameters(recurse=False)
    yield from module.buffers(recurse=False)


def _output_bytes(output: Any) -> int:
    if isinstance(output, torch.Tensor):
        return output.numel() * output.element_size()
    if isinstance(output, (tuple, list)):
        return sum(_output_bytes(item) for item in output)
    if isinstance(output, dict):
        return sum(_output_bytes(item) for item in output.values())
    return 0


def measure_layers(
    model: torch.nn.Module, run: Callable[[], T]
) -> tuple[T, list[LayerMeasurement]]:
    """Run ``run`` with forward hooks on every block; per block, its tensor bytes and
    the largest output it produced."""
    names = block_names(model)
    largest = dict.fromkeys(names, 0)
    handles = []
    for name in names:

        def watch(module: torch.nn.Module, args: Any, output: Any, name: str = name) -> None:
            largest[name] = max(largest[name], _output_bytes(output))

        handles.append(model.get_submodule(name).register_forward_hook(watch))
    try:
        result = run()
    finally:
        for handle in handles:
            handle.remove()
    seen: set[int] = set()
    layers = [
        LayerMeasurement(name, module_bytes(model.get_submodule(name), seen), largest[name])
        for name in names
    ]
    return result, layers


def _cpu_peak_extra(fn: Callable[[], T]) -> tuple[T, int]:
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
    events = [
        (event.start_ns(), event.nbytes())
        for event in prof.profiler.kineto_results.events()
        if event.name() == "[memory]"
    ]
    held = peak = 0
    for _, nbytes in sorted(events, key=lambda item: item[0]):
        held += nbytes
        peak = max(peak, held)
    return result, peak


def _cuda_peak_extra(fn: Callable[[], T], device: torch.device) -> tuple[T, int]:
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    result = fn()
    torch.cuda.synchronize(device)
    return result, torch.cuda.max_memory_allocated(device) - before


def measure_peak(
    fn: Callable[[], T], device: torch.device | str = "cpu", resident_bytes: int = 0
) -> tuple[T, PeakMeasurement]:
    """Run ``fn`` and return its result with the peak tensor memory it reached."""
    device = torch.device(device)
    if device.type == "cuda":
        result, extra = _cuda_peak_extra(fn, device)
    else:
        result, extra = _cpu_peak_extra(fn)
    return result, PeakMeasurement(str(device), resident_bytes, extra)
