"""The many-row weight-only matmuls (memlens/kernels/dense.py) agree with the float
references, run from their row thresholds on, and fall back where a feature is missing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from memlens.kernels import (
    KernelPreference,
    cpu,
    dense,
    formats,
    int4_matmul,
    int8_matmul,
    native,
)
from memlens.kernels import reference as ref

DTYPES = [torch.bfloat16, torch.float32]  # AMX/AVX-512 BF16 machines, and the AVX2 fallback


def _int8(n: int, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    weight = torch.randn(n, k, generator=torch.Generator().manual_seed(seed))
    return formats.quantize_int8_weight(weight)


def _int4(n: int, k: int, group: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(values, packed, scales_zeros in bf16) of a random weight."""
    weight = torch.randn(n, k, generator=torch.Generator().manual_seed(n + k))
    values, scale, zero = formats.quantize_int4_weight(weight, group)
    scales_zeros = cpu.scales_and_zeros(scale, zero).bfloat16()
    return values, cpu.pack_int4(values), scales_zeros


@pytest.mark.parametrize(("m", "k", "n"), [(1, 64, 32), (40, 256, 128), (17, 36, 24)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_int8_dense_matches_reference(m: int, k: int, n: int, dtype: torch.dtype) -> None:
    """Any K (36 is no multiple of 8, which the packed kernel needs), in either dtype."""
    q, scale = _int8(n, k, m)
    x = torch.randn(m, k, generator=torch.Generator().manual_seed(k)).bfloat16()
    expected = ref.int8_matmul(x, q, scale)
    actual = dense.int8_matmul(x, q, scale.bfloat16(), dtype)
    assert actual.dtype == x.dtype
    torch.testing.assert_close(actual, expected, atol=0.25, rtol=2e-2)


def test_auto_runs_packed_below_dense_rows_and_dense_from_there() -> None:
    """The two paths round differently, so bit-equality tells which one ran (INT8)."""
    q, scale = _int8(96, 128, 5)
    scale = scale.bfloat16()
    fast = dense.dense_dtype()
    for rows in (native.MAX_ROWS + 1, dense.INT8_DENSE_ROWS - 1):  # fewer: native.py's
        x = torch.randn(rows, 128, generator=torch.Generator().manual_seed(rows)).bfloat16()
        assert torch.equal(int8_matmul(x, q, scale), cpu.int8_matmul(x, q, scale))
    x = torch.randn(2, dense.INT8_DENSE_ROWS // 2, 128).bfloat16()  # (B, T, K): rows count B·T
    assert torch.equal(int8_matmul(x, q, scale), dense.int8_matmul(x, q, scale, fast))
    assert not torch.equal(int8_matmul(x, q, scale), cpu.int8_matmul(x, q, scale))
    forced = int8_matmul(x, q, scale, KernelPreference.PACKED)
    assert torch.equal(forced, cpu.int8_matmul(x, q, scale))


@pytest.mark.parametrize(("n", "k", "group"), [(64, 64, 32), (192, 576, 64), (128, 256, 128)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_int4_dense_matches_reference(n: int, k: int, group: int, dtype: torch.dtype) -> None:
    block = dense.int4_fits(cpu.pack_int4(torch.zeros(n, k, dtype=torch.int32)))
    if block is None:
        pytest.skip("this CPU build packs INT4 in a layout the dense path does not read")
    values, packed, scales_zeros = _int4(n, k, group)
    rows = dense.INT4_DENSE_ROWS
    x = torch.randn(2, rows // 2, k, generator=torch.Generator().manual_seed(n)).bfloat16()
    scale, zero = scales_zeros[..., 0].T.float(), scales_zeros[..., 1].T.float()  # (N, K/g)
    expected = ref.int4_matmul(x, values, scale, zero, group)
    actual = dense.int4_matmul(x, packed, group, scales_zeros, block, dtype)
    torch.testing.assert_close(actual, expected, atol=0.5, rtol=2e-2)
    auto = int4_matmul(x, packed, group, scales_zeros)  # INT4_DENSE_ROWS rows: dense
    fast = dense.dense_dtype()
    assert torch.equal(auto, dense.int4_matmul(x, packed, group, scales_zeros, block, fast))
    reference_run = int4_matmul(x, packed, group, scales_zeros, KernelPreference.REFERENCE)
    torch.testing.assert_close(reference_run, expected)


@pytest.mark.parametrize(("n", "k"), [(64, 32), (128, 96), (320, 2048)])
def test_blocked_values_read_the_cpu_packing_back(n: int, k: int) -> None:
    block = dense.cpu_row_block()
    if block is None:
        pytest.skip("this CPU build packs INT4 in a layout the dense path does not read")
    values = torch.randint(0, 16, (n, k), dtype=torch.int32, generator=torch.Generator())
    assert torch.equal(dense.blocked_values(cpu.pack_int4(values), block).to(torch.int32), values)


def test_int4_rows_off_the_block_and_unknown_layouts_run_the_packed_kernel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """80 rows are one block and a tail on AVX-512; a build whose packing the probe does
    not recognise runs the packed kernel at any number of rows."""
    x = torch.randn(1, dense.INT4_DENSE_ROWS, 64).bfloat16()
    for n in (80, 128):
        _, packed, scales_zeros = _int4(n, 64, 32)
        if n == 128:
            monkeypatch.setattr(dense, "cpu_row_block", lambda: None)
        actual = int4_matmul(x, packed, 32, scales_zeros, KernelPreference.DENSE)
        assert torch.equal(actual, cpu.int4_matmul(x, packed, 32, scales_zeros))


def test_dense_dtype_follows_the_cpu_features() -> None:
    assert dense.dense_dtype(dense.CpuFeatures(avx512_bf16=False, amx_bf16=False)) is torch.float32
    assert dense.dense_dtype(dense.CpuFeatures(avx512_bf16=True, amx_bf16=False)) is torch.bfloat16
    assert dense.dense_dtype(dense.CpuFeatures(avx512_bf16=False, amx_bf16=True)) is torch.bfloat16
    found = dense.CpuFeatures.detect()
    assert found.avx512_bf16 == torch.cpu._is_avx512_bf16_supported()


@pytest.mark.parametrize("capability", ["avx2", "default"])
def test_int4_dense_under_another_cpu_capability_reads_its_layout_or_falls_back(
    capability: str,
) -> None:
    """aten packs INT4 per its CPU capability: under AVX2 or the plain path the probe
    finds that layout (or none, and the packed kernel runs); the result still matches the
    reference."""
    script = (
        "import torch\n"
        "from memlens.kernels import KernelPreference, cpu, dense, formats, int4_matmul\n"
        "from memlens.kernels import reference\n"
        f"assert torch.backends.cpu.get_cpu_capability() == {capability.upper()!r}\n"
        "w = torch.randn(128, 64)\n"
        "v, s, z = formats.quantize_int4_weight(w, 32)\n"
        "sz = cpu.scales_and_zeros(s, z).bfloat16()\n"
        "x = torch.randn(70, 64).bfloat16()\n"
        "got = int4_matmul(x, cpu.pack_int4(v), 32, sz, KernelPreference.DENSE)\n"
        "ref = reference.int4_matmul(x, v, sz[..., 0].T.float(), sz[..., 1].T.float(), 32)\n"
        "torch.testing.assert_close(got, ref, atol=0.5, rtol=2e-2)\n"
        "print(dense.cpu_row_block())\n"
    )
    env = {**os.environ, "ATEN_CPU_CAPABILITY": capability}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
