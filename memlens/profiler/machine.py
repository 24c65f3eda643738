"""This machine's memory pools: RAM (psutil) and each visible NVIDIA GPU (nvidia-smi)."""

from __future__ import annotations

import os
import shutil
import subprocess
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


NVIDIA_SMI_TIMEOUT_S = 3.0


def gpu_pools() -> list[MemoryPool]:
    """Each visible NVIDIA GPU, asked of ``nvidia-smi`` (no torch import, so the language
    server can call it); ``CUDA_VISIBLE_DEVICES`` indices are honoured. Empty when there
    is no driver or it does not answer in time."""
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return []
    try:
        output = subprocess.run(
            [executable, "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT_S,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    allowed = [v.strip() for v in visible.split(",")] if visible is not None else None
    pools: list[MemoryPool] = []
    for line in output.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3 or not parts[2].isdigit():
            continue
        index, name, mebibytes = parts
        if allowed is not None and index not in allowed:
            continue
        position = allowed.index(index) if allowed is not None else len(pools)
        pools.append(MemoryPool(f"cuda:{position}", name, int(mebibytes) * 2**20))
    return pools


def memory_pools(probe_gpus: bool = True) -> list[MemoryPool]:
    """RAM, then each visible GPU (when ``probe_gpus``)."""
    pools = [MemoryPool("cpu", "RAM", psutil.virtual_memory().total)]
    return pools + gpu_pools() if probe_gpus else pools


def default_budget() -> int:
    """The memory a model may use by default: the largest visible GPU, else RAM."""
    gpus = gpu_pools()
    if gpus:
        return max(pool.capacity_bytes for pool in gpus)
    return int(psutil.virtual_memory().total)


def fits(total_bytes: int, pools: list[MemoryPool]) -> tuple[DeviceFit, ...]:
    """Whether ``total_bytes`` fits in each pool."""
    return tuple(
        DeviceFit(p.device, p.name, p.capacity_bytes, total_bytes <= p.capacity_bytes)
        for p in pools
    )
