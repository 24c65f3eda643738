"""The CPU-offloaded optimizer: refused on the CPU with a message that says what to use."""

from __future__ import annotations

import pytest
import torch

from memlens.errors import UsageError
from memlens.train.offload import CpuOffloadAdamW


def test_refused_for_cpu_parameters() -> None:
    with pytest.raises(UsageError, match=r"not on a GPU.*adamw8bit"):
        CpuOffloadAdamW([torch.nn.Parameter(torch.zeros(4))])


@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="the offloaded optimizer keeps a GPU's state in CPU memory",
)
def test_follows_adamw_on_a_gpu() -> None:
    start = torch.randn(64, 32, generator=torch.Generator().manual_seed(0))
    results = []
    for make in (
        lambda p: torch.optim.AdamW([p], lr=1e-2),
        lambda p: CpuOffloadAdamW([p], lr=1e-2),
    ):
        weight = torch.nn.Parameter(start.clone().cuda())
        optimizer = make(weight)
        for _ in range(10):
            (weight**2).sum().backward()
            optimizer.step()
            optimizer.zero_grad()
        results.append(weight.detach().cpu())
    torch.testing.assert_close(results[1], results[0], rtol=1e-5, atol=1e-6)
