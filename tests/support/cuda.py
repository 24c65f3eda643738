"""The one skip every GPU test carries: it runs where a CUDA device is lent (issue 19's
device check runs them with ``benchmarks/engine_gpu.py``) and says why it skipped
elsewhere."""

from __future__ import annotations

import pytest
import torch

needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device (issue 19)"
)
