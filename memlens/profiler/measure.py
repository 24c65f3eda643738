"""Measured memory of a real run.

On the CPU the peak comes from the profiler's allocation events (every tensor allocation
and free, in order), on CUDA from the caching allocator's statistics; neither is an RSS
guess. Imports torch, so the language server never imports this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

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


def module_bytes(module: torch.nn.Module) -> int:
    """Bytes of a module's parameters and buffers, each shared tensor counted once."""
    seen: set[int] = set()
    total = 0
    for tensor in (*module.parameters(), *module.buffers()):
        if tensor.data_ptr() in seen or tensor.is_meta:
            continue
        seen.add(tensor.data_ptr())
        total += tensor.numel() * tensor.element_size()
    return total


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
