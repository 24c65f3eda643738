"""Memory pools (memlens/profiler/machine.py): RAM always, GPUs from ``nvidia-smi``.

This machine has no GPU, so an executable named ``nvidia-smi`` that prints what the real
one prints for ``--query-gpu=index,name,memory.total --format=csv,noheader,nounits``
stands in for the driver."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import psutil
import pytest

from memlens.profiler.machine import default_budget, gpu_pools, memory_pools

SMI_OUTPUT = "0, NVIDIA H100 80GB HBM3, 81559\n1, NVIDIA A10G, 23028\n"


@pytest.fixture
def fake_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "nvidia-smi"
    script.write_text(f"#!/bin/sh\nprintf '{SMI_OUTPUT}'\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_ram_only_without_a_driver(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    [ram] = memory_pools()
    assert (ram.device, ram.capacity_bytes) == ("cpu", psutil.virtual_memory().total)
    assert default_budget() == psutil.virtual_memory().total


def test_gpus_from_nvidia_smi(fake_smi: None) -> None:
    h100, a10 = gpu_pools()
    assert (h100.device, h100.name, h100.capacity_bytes) == (
        "cuda:0",
        "NVIDIA H100 80GB HBM3",
        81559 * 2**20,
    )
    assert (a10.device, a10.capacity_bytes) == ("cuda:1", 23028 * 2**20)
    assert default_budget() == 81559 * 2**20
    assert [p.device for p in memory_pools()] == ["cpu", "cuda:0", "cuda:1"]
    assert memory_pools(probe_gpus=False)[0].device == "cpu"


def test_cuda_visible_devices_is_honoured(fake_smi: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    [only] = gpu_pools()
    assert (only.device, only.name) == ("cuda:0", "NVIDIA A10G")
