"""GPU path through aten's CUDA ops; imported only when a tensor is on a CUDA device.

INT8 dequantizes into the activation dtype and runs cuBLAS (one transient weight copy per
call). INT4 layers keep aten's CPU packing, whose layout differs from the CUDA kernel's,
so they run on the CPU only.
"""

from __future__ import annotations

import torch


def int8_matmul(x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``x (…, K)`` times int8 ``q (N, K)`` with per-channel ``scale (N,)`` → ``(…, N)``."""
    out: torch.Tensor = torch.nn.functional.linear(x, q.to(x.dtype))  # (…, N)
    return out * scale.to(x.dtype)
