"""aten's CUDA ops behind memlens/kernels/cuda.py agree with the float references: INT4
through tinygemm (packed on the GPU from the values the CPU layout reads back to) and
INT8 through ``_weight_int8pack_mm`` and the dequantize-then-cuBLAS fallback. GPU only."""

from __future__ import annotations

import pytest
import torch

from memlens.kernels import cpu, formats, int4_matmul, int4_values, pack_int4, reference
from tests.support.cuda import needs_cuda

pytestmark = needs_cuda

INT4_SHAPES = [(1, 128, 48), (8, 384, 64), (5, 4096, 1040)]  # (M, K, N); odd M and N


@pytest.mark.parametrize(("m", "k", "n"), INT4_SHAPES)
@pytest.mark.parametrize("group", [32, 64, 128])
def test_int4_tinygemm_matches_reference(m: int, k: int, n: int, group: int) -> None:
    from memlens.kernels import cuda

    g = torch.Generator().manual_seed(m + k + n + group)
    weight = torch.randn(n, k, generator=g)
    x = torch.randn(m, k, generator=g).to(torch.bfloat16)
    values, scale, zero = formats.quantize_int4_weight(weight, group)
    scales_zeros = cpu.scales_and_zeros(scale, zero).to(torch.bfloat16)
    expected = reference.int4_matmul(
        x, values, scales_zeros[..., 0].float().T, scales_zeros[..., 1].float().T, group
    )
    packed = cuda.pack_int4(values.cuda())
    assert packed.numel() * packed.element_size() == n * k // 2  # the stored bytes
    actual = int4_matmul(x.cuda(), packed, group, scales_zeros.cuda())
    torch.testing.assert_close(actual.float().cpu(), expected.float(), rtol=2e-2, atol=0.5)


@pytest.mark.parametrize(("n", "k", "group"), [(48, 128, 32), (1040, 4096, 128)])
def test_int4_cuda_packing_reads_back_exactly(n: int, k: int, group: int) -> None:
    values = torch.randint(0, 16, (n, k), dtype=torch.int32)
    packed = pack_int4(values, torch.device("cuda"))
    assert torch.equal(int4_values(packed, n, k, group).cpu(), values)


@pytest.mark.parametrize("k", [160, 4096, 100])  # 100: not a multiple of 8, the fallback
@pytest.mark.parametrize("m", [1, 7])
def test_int8_on_cuda_matches_reference(k: int, m: int) -> None:
    from memlens.kernels import cuda

    g = torch.Generator().manual_seed(k + m)
    q, scale = formats.quantize_int8_weight(torch.randn(96, k, generator=g))
    x = torch.randn(m, k, generator=g).to(torch.bfloat16)
    expected = reference.int8_matmul(x.float(), q, scale)
    for path in (cuda.int8_matmul, cuda.int8_matmul_dequantized):
        actual = path(x.cuda(), q.cuda(), scale.to(torch.bfloat16).cuda())
        torch.testing.assert_close(actual.float().cpu(), expected, rtol=2e-2, atol=0.1)
