"""This machine's memory pools: RAM (psutil) and each visible CUDA GPU."""

from __future__ import annotations

from dataclasses import dataclass

import psutil

from memlens.profiler.estimate import DeviceFit


@dataclass(frozen=True)
class MemoryPool:
    """One place a model can live."""

    device: str
    """``cpu`` or ``cuda:N``."""
    name: str
    capacity_bytes: int


def memory_pools(probe_gpus: bool = True) -> list[MemoryPool]:
    """RAM, then each CUDA GPU torch can see.

    GPUs are probed (importing torch) only when ``probe_gpus``; the language server's
    process passes False and never imports torch.
    """
    pools = [MemoryPool("cpu", "RAM", psutil.virtual_memory().total)]
    if not probe_gpus:
        return pools
    import torch

    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            pools.append(MemoryPool(f"cuda:{index}", props.name, props.total_memory))
    return pools


def fits(total_bytes: int, pools: list[MemoryPool]) -> tuple[DeviceFit, ...]:
    """Whether ``total_bytes`` fits in each pool."""
    return tuple(
        DeviceFit(p.device, p.name, p.capacity_bytes, total_bytes <= p.capacity_bytes)
        for p in pools
    )
