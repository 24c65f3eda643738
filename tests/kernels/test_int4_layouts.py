"""The INT4 layout conversions (memlens/kernels/int4_layouts.py) are exact: the CPU
packing reads back to the values it packed, and the nibbles handed to aten's CUDA packer,
with the stored scales and zeros, dequantize under tinygemm's formula
(``reference.dequantize_tinygemm_int4``) to exactly memlens's reference dequantization.
The CUDA op itself runs in tests/kernels/test_cuda.py where a GPU is lent."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from memlens.errors import ConfigError
from memlens.kernels import cpu, formats, int4_values, pack_int4, reference
from memlens.kernels.int4_layouts import (
    cpu_values,
    tinygemm_inner_k_tiles,
    tinygemm_nibbles,
    values_through_kernel,
)
from memlens.profiler.tensors import VALID_GROUP_SIZES, int4_fits

# rows: one 16-row tail, full 32/64-row blocks, blocks plus a tail (AVX2 and AVX-512 pack
# 32 and 64 rows per block); columns: one group up to several, odd group counts
ODD_SHAPES = [(16, 32), (48, 64), (80, 96), (112, 384), (1040, 128)]


@pytest.mark.parametrize(("n", "k"), ODD_SHAPES)
def test_cpu_packing_reads_back(n: int, k: int) -> None:
    values = torch.randint(
        0, 16, (n, k), dtype=torch.int32, generator=torch.Generator().manual_seed(n)
    )
    assert torch.equal(cpu_values(cpu.pack_int4(values), n, k), values)


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(1, 40),
    groups=st.integers(1, 5),
    group=st.sampled_from(VALID_GROUP_SIZES),
    seed=st.integers(0, 2**31 - 1),
)
def test_cuda_conversion_dequantizes_to_the_reference(
    rows: int, groups: int, group: int, seed: int
) -> None:
    n, k = 16 * rows, groups * group
    weight = torch.randn(n, k, generator=torch.Generator().manual_seed(seed)) * 3
    values, scale, zero = formats.quantize_int4_weight(weight, group)
    stored_sz = cpu.scales_and_zeros(scale, zero).to(torch.bfloat16)  # what Int4Linear keeps
    read_back = cpu_values(cpu.pack_int4(values), n, k)  # what a move to CUDA starts from
    nibbles = tinygemm_nibbles(read_back)
    expected = formats.dequantize_int4_weight(
        values, stored_sz[..., 0].float().T, stored_sz[..., 1].float().T, group
    )
    assert torch.equal(reference.dequantize_tinygemm_int4(nibbles, stored_sz, group), expected)


def test_nibble_order_is_even_k_high() -> None:
    values = torch.tensor([[1, 2, 3, 4]], dtype=torch.int32)
    assert tinygemm_nibbles(values).tolist() == [[0x12, 0x34]]


@pytest.mark.parametrize(
    ("k", "tiles"),
    [(32, 2), (64, 4), (96, 2), (128, 8), (192, 4), (4096, 8), (11008, 8), (2080, 2)],
)
def test_inner_k_tiles_divide_k(k: int, tiles: int) -> None:
    assert tinygemm_inner_k_tiles(k) == tiles


def test_every_int4_layer_shape_fits_the_cuda_kernel() -> None:
    """int4_fits (the engine's and the estimator's rule) admits only shapes tinygemm takes:
    out_features in eights, in_features in 32s (so some inner-K tiling divides it)."""
    for group in VALID_GROUP_SIZES:
        for out, inp in [(16, group), (48, 3 * group), (4096, 11008 // group * group)]:
            assert int4_fits(out, inp, group)
            assert out % 8 == 0 and inp % 32 == 0 and tinygemm_inner_k_tiles(inp) in (2, 4, 8)


@pytest.mark.parametrize(("n", "k", "group"), [(16, 32, 32), (48, 128, 64), (32, 256, 128)])
def test_values_read_through_a_kernel_are_exact(n: int, k: int, group: int) -> None:
    """The read-back CUDA uses (identity through the kernel), run here through the CPU
    kernel on the CPU packing."""
    values = torch.randint(
        0, 16, (n, k), dtype=torch.int32, generator=torch.Generator().manual_seed(k)
    )
    packed = cpu.pack_int4(values)

    def run(x: torch.Tensor, scales_zeros: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = torch.ops.aten._weight_int4pack_mm_for_cpu(
            x, packed, group, scales_zeros
        )
        return out

    assert torch.equal(values_through_kernel(run, n, k, group, torch.device("cpu")), values)


def test_pack_and_read_back_on_the_cpu_and_meta() -> None:
    values = torch.randint(0, 16, (32, 64), dtype=torch.int32)
    packed = pack_int4(values, torch.device("cpu"))
    assert torch.equal(packed, cpu.pack_int4(values))
    assert torch.equal(int4_values(packed, 32, 64, 32), values)
    on_meta = pack_int4(values.to("meta"), torch.device("meta"))
    assert on_meta.shape == (32, 32) and on_meta.is_meta
    assert int4_values(on_meta, 32, 64, 32).shape == (32, 64)


def test_a_damaged_packing_is_refused_not_misread(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the packer's layout ever differs from what the probes read, the re-pack check
    raises instead of handing back wrong weights (here the check sees a packer that
    disagrees with itself)."""
    values = torch.randint(0, 16, (32, 64), dtype=torch.int32)
    packed = cpu.pack_int4(values)
    real = cpu.pack_int4
    monkeypatch.setattr(cpu, "pack_int4", lambda v: real(v) if v.shape[1] == 2 else real(v) ^ 1)
    with pytest.raises(ConfigError, match="cannot read back"):
        cpu_values(packed, 32, 64)


def test_the_reading_follows_another_cpu_capability() -> None:
    """aten's plain (non-vector) CPU path packs rows in another order than AVX2/AVX-512;
    the probes read whichever layout the process packs with."""
    script = (
        "import torch\n"
        "from memlens.kernels import cpu\n"
        "from memlens.kernels.int4_layouts import cpu_values\n"
        "assert torch.backends.cpu.get_cpu_capability() == 'DEFAULT'\n"
        "v = torch.randint(0, 16, (80, 128), dtype=torch.int32)\n"
        "assert torch.equal(cpu_values(cpu.pack_int4(v), 80, 128), v)\n"
    )
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default"}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
