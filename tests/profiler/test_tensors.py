"""Exact bytes of each storage format (memlens/profiler/tensors.py)."""

from __future__ import annotations

import pytest

from memlens.errors import UsageError
from memlens.profiler.tensors import (
    StorageDtype,
    check_group_size,
    embedding,
    int4_group_size,
    matrix,
    parse_dtypes,
    transposed_matrix,
    vector,
)


def test_float_formats_are_element_size_times_numel() -> None:
    weight = matrix("w", 11008, 4096)
    assert weight.nbytes(StorageDtype.FP32) == 11008 * 4096 * 4
    assert weight.nbytes(StorageDtype.BF16) == weight.nbytes(StorageDtype.FP16) == 11008 * 4096 * 2


def test_int8_is_one_byte_per_weight_plus_a_bf16_scale_per_output_channel() -> None:
    assert matrix("w", 11008, 4096).nbytes(StorageDtype.INT8) == 11008 * 4096 + 11008 * 2


@pytest.mark.parametrize("group", [32, 64, 128])
def test_int4_packs_two_per_byte_plus_scale_and_zero_per_group(group: int) -> None:
    groups = 11008 * (4096 // group)
    assert matrix("w", 11008, 4096).nbytes(StorageDtype.INT4, group) == (
        11008 * 4096 // 2 + groups * 2 * 2
    )


def test_stacked_experts_and_transposed_matrices_count_every_output_row() -> None:
    experts = matrix("e", 96, 64, experts=4)
    assert experts.shape == (4, 96, 64)
    assert experts.nbytes(StorageDtype.INT8) == 4 * 96 * 64 + 4 * 96 * 2
    conv = transposed_matrix("c", 64, 192)  # GPT-2 Conv1D: (in, out)
    assert conv.nbytes(StorageDtype.INT4, 32) == 64 * 192 // 2 + 192 * 2 * 2 * 2


def test_int4_uses_the_largest_group_up_to_the_asked_one_that_divides_the_width() -> None:
    assert int4_group_size(1536, 576, 128) == 64  # SmolLM2: 576 = 9 × 64
    assert int4_group_size(1536, 576, 32) == 32
    assert int4_group_size(64, 96, 128) == 32
    assert int4_group_size(64, 100, 128) is None  # no supported group divides: INT8
    assert int4_group_size(40, 64, 32) is None  # outputs not a multiple of 16
    assert matrix("w", 1536, 576).nbytes(StorageDtype.INT4, 128) == matrix("w", 1536, 576).nbytes(
        StorageDtype.INT4, 64
    )


def test_non_matrix_tensors_stay_bf16_under_integer_formats() -> None:
    for tensor in (vector("norm", 4096), embedding("emb", 32000, 4096)):
        assert tensor.nbytes(StorageDtype.INT4) == tensor.nbytes(StorageDtype.BF16)
        assert tensor.nbytes(StorageDtype.INT8) == tensor.nbytes(StorageDtype.BF16)


def test_parse_dtypes_accepts_aliases_and_rejects_unknown_names() -> None:
    assert parse_dtypes("float32, bfloat16,half,int8,int4,int4") == (
        StorageDtype.FP32,
        StorageDtype.BF16,
        StorageDtype.FP16,
        StorageDtype.INT8,
        StorageDtype.INT4,
    )
    for bad in ("int3", "", "fp32,,x"):
        with pytest.raises(UsageError):
            parse_dtypes(bad)


def test_group_size_must_be_supported() -> None:
    assert check_group_size(64) == 64
    with pytest.raises(UsageError, match="32, 64, 128"):
        check_group_size(48)


def test_memory_estimate_json_round_trip() -> None:
    from memlens.profiler.configs import resolve_config
    from memlens.profiler.estimate import analytic_estimate, estimate_from_json

    [estimate] = analytic_estimate(resolve_config("gpt2").config, "gpt2", [StorageDtype.INT4])
    assert estimate_from_json(estimate.to_json()) == estimate
