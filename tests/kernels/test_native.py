"""The native INT8 kernel (memlens/kernels/native.py) agrees with the float reference
within its 16-bit input rounding, runs for a few rows where it fits, and falls back to
aten where it cannot build or the CPU lacks its features."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from memlens.kernels import KernelPreference, cpu, formats, int8_matmul, native, reference

needs_native = pytest.mark.skipif(
    not native.available(), reason="no AVX-512 VNNI or no C compiler here: aten's kernel runs"
)


def _weight(n: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    return formats.quantize_int8_weight(torch.randn(n, k, generator=torch.Generator()))


@needs_native
@pytest.mark.parametrize(("m", "k", "n"), [(1, 64, 4), (1, 576, 192), (3, 2048, 1536)])
@pytest.mark.parametrize("outlier", [1.0, 300.0])
def test_matches_reference_within_the_16_bit_input_rounding(
    m: int, k: int, n: int, outlier: float
) -> None:
    """Each input is off by at most half a step of ``max|x| / 32767``, so each output by
    at most that times the row's ``Σ|w|`` (plus float32 rounding)."""
    q, scale = _weight(n, k)
    x = torch.randn(m, k, generator=torch.Generator().manual_seed(k))
    x[:, 0] *= outlier  # one large input coarsens the step for the whole row
    expected = reference.int8_matmul(x, q, scale)
    actual = native.int8_matmul(x, q, scale)
    half_step = x.abs().amax(dim=1, keepdim=True) / 32767 / 2  # (M, 1)
    row_mass = (q.float().abs() * scale[:, None]).sum(dim=1)  # (N,)
    bound = half_step * row_mass + 1e-5 * expected.abs() + 1e-6
    assert bool(((actual - expected).abs() <= bound).all())


@needs_native
def test_auto_runs_it_for_a_few_rows_on_one_thread_and_packed_forces_aten() -> None:
    q, scale = _weight(96, 128)
    scale = scale.bfloat16()
    x = torch.randn(1, native.MAX_ROWS, 128).bfloat16()
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert torch.equal(int8_matmul(x, q, scale), native.int8_matmul(x, q, scale))
        torch.set_num_threads(2)  # aten's kernel spreads over threads; this one does not
        assert torch.equal(int8_matmul(x, q, scale), cpu.int8_matmul(x, q, scale))
    finally:
        torch.set_num_threads(threads)
    forced = int8_matmul(x, q, scale, KernelPreference.PACKED)
    assert torch.equal(forced, cpu.int8_matmul(x, q, scale))
    more = torch.randn(native.MAX_ROWS + 1, 128).bfloat16()
    assert torch.equal(int8_matmul(more, q, scale), cpu.int8_matmul(more, q, scale))


def test_shapes_it_does_not_take_and_a_missing_kernel_run_aten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    x = torch.randn(1, 128).bfloat16()
    q, scale = _weight(6, 128)  # 6 rows: not in fours
    assert not native.fits(q)
    assert not native.fits(torch.empty(4, 65536 + 64, dtype=torch.int8))  # int32 sums overflow
    assert native.fits(torch.empty(4, 65536, dtype=torch.int8))
    assert torch.equal(int8_matmul(x, q, scale.bfloat16()), cpu.int8_matmul(x, q, scale.bfloat16()))
    q, scale = _weight(8, 128)
    monkeypatch.setattr(native, "available", lambda: False)  # a CPU without VNNI
    assert torch.equal(int8_matmul(x, q, scale.bfloat16()), cpu.int8_matmul(x, q, scale.bfloat16()))


def test_a_failed_build_gives_no_library(tmp_path: Path) -> None:
    assert native.build(tmp_path, compiler="false") is None  # `false` exits 1
    assert native.build(tmp_path, compiler=str(tmp_path / "no-such-compiler")) is None
    assert list(tmp_path.glob("*.so")) == []


def test_the_feature_gate_reads_torchs_report(monkeypatch: pytest.MonkeyPatch) -> None:
    found = torch.cpu.get_capabilities()
    expected = all(found.get(name, False) for name in native.FEATURES)
    assert native.cpu_has_features() == expected
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {**found, "avx512_vnni": False})
    assert not native.cpu_has_features()
