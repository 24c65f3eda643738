"""Shapes of the tensors a model holds, and their bytes in each storage format.

The storage formats are the ones memlens itself uses (the engine stores compressed
weights exactly this way), so an INT4 size here is the exact number of bytes held, not
"fp32 ÷ 8":

- ``fp32``/``bf16``/``fp16``: every tensor at that element size.
- ``int8``: each weight matrix as int8 with one bf16 scale per output channel
  (symmetric); everything else (embeddings, norms, biases) stays bf16.
- ``int4``: each weight matrix as packed 4-bit values (two per byte) with a bf16 scale
  and a bf16 zero point per group of ``group_size`` input features (asymmetric); a matrix
  whose input features are not a multiple of the group size is stored as INT8 instead;
  everything else stays bf16.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from memlens.errors import UsageError


class StorageDtype(StrEnum):
    """How weights are stored."""

    FP32 = "fp32"
    """32-bit float, 4 bytes per element."""
    BF16 = "bf16"
    """bfloat16, 2 bytes per element."""
    FP16 = "fp16"
    """IEEE half, 2 bytes per element."""
    INT8 = "int8"
    """Weight matrices as int8 + one bf16 scale per output channel; the rest bf16."""
    INT4 = "int4"
    """Weight matrices as packed int4 + bf16 scale and zero per group; the rest bf16."""

    @property
    def is_quantized(self) -> bool:
        """True for the integer formats."""
        return self in _QUANTIZED

    @property
    def compute_dtype(self) -> StorageDtype:
        """Float dtype of activations and the KV cache when weights are stored this way."""
        return StorageDtype.BF16 if self in _QUANTIZED else self

    @property
    def float_bytes(self) -> int:
        """Bytes per element of the float dtype (the compute dtype for integer formats)."""
        return _FLOAT_BYTES[self]

    @property
    def torch_name(self) -> str:
        """The ``torch`` attribute name of the float dtype tensors are held in
        (``bf16`` → ``"bfloat16"``); the compute dtype's for the integer formats."""
        return _TORCH_NAMES[self.compute_dtype]

    @classmethod
    def from_torch_name(cls, name: str) -> StorageDtype | None:
        """``"bfloat16"``, ``"torch.bfloat16"``, ``"half"`` … → the storage dtype; None for
        a name that is not one of memlens's float formats (``"float64"``, ``"auto"``)."""
        return _FROM_TORCH_NAME.get(name.removeprefix("torch."))


_QUANTIZED = frozenset({StorageDtype.INT8, StorageDtype.INT4})
_FLOAT_BYTES = {
    StorageDtype.FP32: 4,
    StorageDtype.BF16: 2,
    StorageDtype.FP16: 2,
    StorageDtype.INT8: 2,  # computes in bf16
    StorageDtype.INT4: 2,
}
_TORCH_NAMES = {
    StorageDtype.FP32: "float32",
    StorageDtype.BF16: "bfloat16",
    StorageDtype.FP16: "float16",
}
_FROM_TORCH_NAME = {
    **{name: dtype for dtype, name in _TORCH_NAMES.items()},
    "float": StorageDtype.FP32,
    "half": StorageDtype.FP16,
}
FLOAT_DTYPES = tuple(_TORCH_NAMES)
"""The float storage formats, in the order the CLI offers them."""
_SCALE_BYTES = 2  # bf16 scale (and zero point) per channel or group
VALID_GROUP_SIZES = (32, 64, 128)
DEFAULT_GROUP_SIZE = 128


def parse_dtypes(text: str) -> tuple[StorageDtype, ...]:
    """Parse ``"fp32,bf16,int4"``; aliases ``float32``/``bfloat16``/``float16``/``half``."""
    result: list[StorageDtype] = []
    for raw in text.split(","):
        name = raw.strip().lower()
        try:
            dtype = StorageDtype.from_torch_name(name) or StorageDtype(name)
        except ValueError:
            valid = ", ".join(d.value for d in StorageDtype)
            raise UsageError(f"unknown dtype {raw.strip()!r}: use one or more of {valid}") from None
        if dtype not in result:
            result.append(dtype)
    if not result:
        raise UsageError("no dtype given: use one or more of fp32, bf16, fp16, int8, int4")
    return tuple(result)


def check_group_size(group_size: int) -> int:
    """Return ``group_size`` if memlens's INT4 kernels support it, else raise UsageError."""
    if group_size not in VALID_GROUP_SIZES:
        raise UsageError(
            f"INT4 group size {group_size} is not supported: use one of "
            + ", ".join(str(g) for g in VALID_GROUP_SIZES)
        )
    return group_size


class TensorKind(StrEnum):
    """What a parameter tensor is, which decides how compressed formats store it."""

    MATRIX = "matrix"
    """A weight matrix used as ``x @ W.T`` (Linear, Conv1D, stacked MoE experts)."""
    EMBEDDING = "embedding"
    """A lookup table (token, position, token-type embeddings)."""
    VECTOR = "vector"
    """A norm weight, a bias, or another 1-D parameter."""
    OTHER = "other"
    """Anything else; stored at the compute dtype."""


@dataclass(frozen=True)
class TensorSpec:
    """One parameter tensor: its name inside its block, shape and kind.

    For ``MATRIX`` tensors, ``out_features`` counts every output row, across experts for a
    stacked ``(experts, out, in)`` tensor, and ``in_features`` is the reduction size.
    """

    name: str
    shape: tuple[int, ...]
    kind: TensorKind
    out_features: int = 0
    in_features: int = 0

    @cached_property
    def numel(self) -> int:
        """Number of elements (parameters)."""
        return math.prod(self.shape)

    def nbytes(self, dtype: StorageDtype, group_size: int = DEFAULT_GROUP_SIZE) -> int:
        """Exact bytes of this tensor stored as ``dtype``."""
        if self.kind is not TensorKind.MATRIX or not dtype.is_quantized:
            return self.numel * dtype.float_bytes
        group = int4_group_size(self.out_features, self.in_features, group_size)
        if dtype is StorageDtype.INT4 and group is not None:
            groups = self.out_features * (self.in_features // group)
            return math.ceil(self.numel / 2) + groups * 2 * _SCALE_BYTES
        return self.numel + self.out_features * _SCALE_BYTES


INT4_OUT_MULTIPLE = 16
"""aten's CPU INT4 packing needs output features in multiples of 16."""


def int4_fits(out_features: int, in_features: int, group_size: int) -> bool:
    """Whether a matrix stores as INT4; one that does not falls back to INT8 (the engine
    and the estimator share this rule)."""
    return in_features % group_size == 0 and out_features % INT4_OUT_MULTIPLE == 0


def int4_group_size(out_features: int, in_features: int, group_size: int) -> int | None:
    """The group size a matrix stores INT4 with: the largest supported size up to
    ``group_size`` that divides ``in_features`` (576 wide with 128 asked → 64), or None
    when none does and it falls back to INT8 (the engine and the estimator share this)."""
    fitting = [
        size
        for size in VALID_GROUP_SIZES
        if size <= group_size and int4_fits(out_features, in_features, size)
    ]
    return max(fitting, default=None)


def matrix(
    name: str, out_features: int, in_features: int, experts: int | None = None
) -> TensorSpec:
    """A ``(out, in)`` weight matrix, or stacked ``(experts, out, in)`` when ``experts`` is
    given (even 1: a one-expert MoE still stores a 3-D tensor)."""
    if experts is None:
        return TensorSpec(
            name, (out_features, in_features), TensorKind.MATRIX, out_features, in_features
        )
    return TensorSpec(
        name,
        (experts, out_features, in_features),
        TensorKind.MATRIX,
        out_features * experts,
        in_features,
    )


def vector(name: str, size: int) -> TensorSpec:
    """A 1-D parameter (norm weight, bias)."""
    return TensorSpec(name, (size,), TensorKind.VECTOR)


def embedding(name: str, rows: int, dim: int) -> TensorSpec:
    """An embedding table of ``rows`` entries of width ``dim``."""
    return TensorSpec(name, (rows, dim), TensorKind.EMBEDDING)


def transposed_matrix(name: str, in_features: int, out_features: int) -> TensorSpec:
    """An ``(in, out)`` weight matrix used as ``x @ W`` (GPT-2's ``Conv1D``)."""
    return TensorSpec(
        name, (in_features, out_features), TensorKind.MATRIX, out_features, in_features
    )


def _qualified(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def linear(prefix: str, out_features: int, in_features: int, bias: bool) -> list[TensorSpec]:
    """An ``nn.Linear``'s weight and, when ``bias``, its bias."""
    tensors = [matrix(_qualified(prefix, "weight"), out_features, in_features)]
    return [*tensors, vector(_qualified(prefix, "bias"), out_features)] if bias else tensors


def layer_norm(prefix: str, size: int, affine: bool = True) -> list[TensorSpec]:
    """An ``nn.LayerNorm``'s weight and bias (none when not elementwise-affine)."""
    if not affine:
        return []
    return [vector(_qualified(prefix, "weight"), size), vector(_qualified(prefix, "bias"), size)]
