"""``nn.Linear`` replacements that hold compressed weights, in memlens's storage format
(the one ``memlens/profiler/tensors.py`` counts, so estimates and memory agree)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from memlens.engine.weights.int4_devices import Int4DevicePacking
from memlens.errors import UsageError
from memlens.kernels import cpu, int4_matmul, int8_matmul, pack_int4, reference
from memlens.kernels.formats import quantize_int4_weight, quantize_int8_weight

COMPUTE_DTYPE = torch.bfloat16  # the aten packed kernels are fast with bf16 activations


def _bias(linear: nn.Linear) -> torch.Tensor | None:
    return None if linear.bias is None else linear.bias.detach().to(COMPUTE_DTYPE).clone()


class CompressedLinear(nn.Module):
    """What every compressed Linear shares: a storage kind, bf16 compute, an optional bias."""

    kind: ClassVar[str]
    """The scheme checkpoints record (``int8``, ``int4``, ``lowrank``)."""
    in_features: int
    out_features: int
    bias: torch.Tensor | None

    def label(self) -> str:
        """What the layer holds, e.g. ``int4:g64`` (reports show it)."""
        return self.kind

    def _matmul(self, x: torch.Tensor) -> torch.Tensor:
        """``x (…, in)`` in bf16 → ``(…, out)`` without the bias."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (…, in)`` → ``(…, out)`` in ``x``'s dtype."""
        out = self._matmul(x.to(COMPUTE_DTYPE))
        if self.bias is not None:
            out = out + self.bias
        return out.to(x.dtype)


class Int8Linear(CompressedLinear):
    """INT8 weights ``(out, in)`` with one bf16 scale per output channel."""

    kind = "int8"
    q: torch.Tensor
    scale: torch.Tensor
    bias: torch.Tensor | None

    def __init__(self, q: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.in_features, self.out_features = q.shape[1], q.shape[0]
        self.register_buffer("q", q)  # (out, in) int8
        self.register_buffer("scale", scale.to(COMPUTE_DTYPE))  # (out,)
        self.register_buffer("bias", bias)

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> Int8Linear:
        """Quantize an ``nn.Linear``."""
        q, scale = quantize_int8_weight(linear.weight.detach())
        return cls(q, scale, _bias(linear))

    def _matmul(self, x: torch.Tensor) -> torch.Tensor:
        return int8_matmul(x, self.q, self.scale)


class Int8DynLinear(CompressedLinear):
    """``int8-dyn``: INT8 weights ``(out, in)`` with float32 per-channel scales, times
    activations quantized to 7 bits per call (INT8×INT8 matmuls, float32 in and out).

    Where fbgemm runs (:func:`memlens.kernels.cpu.int8_dyn_available`) the weight is held
    only in fbgemm's packed form (``packed``; ``q`` and ``scale`` are then ``None`` and the
    state dict unpacks them); elsewhere ``q`` and ``scale`` run the float reference."""

    kind = "int8-dyn"
    q: torch.Tensor | None
    scale: torch.Tensor | None
    bias: torch.Tensor | None

    def __init__(self, q: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.in_features, self.out_features = q.shape[1], q.shape[0]
        self.register_buffer("q", q)  # (out, in) int8
        self.register_buffer("scale", scale.float())  # (out,)
        self.register_buffer("bias", bias)  # (out,) float32
        self.packed: torch.ScriptObject | None = None
        self.pack_()

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> Int8DynLinear:
        """Quantize an ``nn.Linear``."""
        q, scale = quantize_int8_weight(linear.weight.detach())
        bias = None if linear.bias is None else linear.bias.detach().float().clone()
        return cls(q, scale, bias)

    def pack_(self) -> None:
        """Move ``q`` and ``scale`` into fbgemm's packed form where it runs."""
        if self.q is None or self.scale is None or self.q.device.type != "cpu":
            return
        if cpu.int8_dyn_available():
            self.packed = cpu.pack_int8_dyn(self.q, self.scale)
            self.q = self.scale = None

    def packed_bytes(self) -> int:
        """Bytes held outside buffers: the packed weight and its scales."""
        return 0 if self.packed is None else self.out_features * (self.in_features + 4)

    def _save_to_state_dict(self, destination: Any, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.packed is not None:
            destination[prefix + "q"], destination[prefix + "scale"] = cpu.unpack_int8_dyn(
                self.packed
            )

    def _load_from_state_dict(self, state_dict: Any, prefix: str, *args: Any) -> None:
        if self.packed is not None:  # receive q and scale, then pack them again
            self.packed = None
            self.q = torch.empty(self.out_features, self.in_features, dtype=torch.int8)
            self.scale = torch.empty(self.out_features)
        super()._load_from_state_dict(state_dict, prefix, *args)
        self.pack_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (…, in)`` → ``(…, out)`` in ``x``'s dtype (computed from float32)."""
        out = self._matmul(x.float())
        if self.bias is not None:
            out = out + self.bias
        return out.to(x.dtype)

    def _matmul(self, x: torch.Tensor) -> torch.Tensor:
        if self.packed is None:
            assert self.q is not None and self.scale is not None
            return reference.int8_dyn_matmul(x, self.q, self.scale)
        if x.device.type != "cpu":
            raise UsageError("int8-dyn layers packed for fbgemm run on the CPU; use int8 on a GPU")
        return cpu.int8_dyn_matmul(x, self.packed)


_INT4_ROWS = 4096
"""Rows quantized and packed at once on the CPU (a multiple of the kernel's 64-row blocks:
packing blocks one after another gives the same bytes as packing the whole)."""


class Int4Linear(Int4DevicePacking, CompressedLinear):
    """INT4 weights packed two per byte, a bf16 scale and zero per group of inputs (packed
    for the device's kernel: see ``int4_devices.py``)."""

    kind = "int4"
    packed: torch.Tensor
    scales_zeros: torch.Tensor
    bias: torch.Tensor | None

    def __init__(
        self,
        packed: torch.Tensor,
        scales_zeros: torch.Tensor,
        group_size: int,
        out_features: int,
        in_features: int,
        bias: torch.Tensor | None,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.group_size = group_size
        self.register_buffer("packed", packed)  # (out, in/2) uint8
        self.register_buffer("scales_zeros", scales_zeros.to(COMPUTE_DTYPE))  # (in/g, out, 2)
        self.register_buffer("bias", bias)

    @classmethod
    def from_linear(cls, linear: nn.Linear, group_size: int) -> Int4Linear:
        """Quantize an ``nn.Linear`` (its input features must divide by ``group_size``)."""
        weight = linear.weight.detach()
        # on the CPU, rows a block at a time: the float and int32 temporaries of a whole
        # LM head (32000 × 2048) took 0.9 GiB at once while loading compressed
        step = _INT4_ROWS if weight.device.type == "cpu" else weight.shape[0]
        packed, scales_zeros = [], []
        for start in range(0, weight.shape[0], step):  # blocks pack row-independently
            rows = weight[start : start + step]  # (≤ step, K)
            values, scale, zero = quantize_int4_weight(rows, group_size)
            packed.append(pack_int4(values, values.device))  # for the weight's device
            scales_zeros.append(cpu.scales_and_zeros(scale, zero))  # (K/g, rows, 2)
        return cls(
            torch.cat(packed),
            torch.cat(scales_zeros, dim=1),
            group_size,
            linear.out_features,
            linear.in_features,
            _bias(linear),
        )

    def label(self) -> str:
        return f"int4:g{self.group_size}"

    def _matmul(self, x: torch.Tensor) -> torch.Tensor:
        return int4_matmul(x, self.packed, self.group_size, self.scales_zeros)


class LowRankLinear(CompressedLinear):
    """``W ≈ up @ down``: ``down (rank, in)`` and ``up (out, rank)`` in bf16 (truncated SVD)."""

    kind = "lowrank"
    down: torch.Tensor
    up: torch.Tensor
    bias: torch.Tensor | None

    def __init__(self, down: torch.Tensor, up: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.in_features, self.out_features = down.shape[1], up.shape[0]
        self.rank = down.shape[0]
        self.register_buffer("down", down.to(COMPUTE_DTYPE))  # (rank, in)
        self.register_buffer("up", up.to(COMPUTE_DTYPE))  # (out, rank)
        self.register_buffer("bias", bias)

    @classmethod
    def from_linear(
        cls,
        linear: nn.Linear,
        energy: float = 0.99,
        max_error: float | None = None,
        inputs: torch.Tensor | None = None,
    ) -> LowRankLinear:
        """Truncate the SVD of ``linear.weight`` at the rank :func:`choose_rank` picks."""
        u, s, vh = torch.linalg.svd(linear.weight.detach().float(), full_matrices=False)
        rank = choose_rank(s, vh, energy, max_error, inputs)
        down = vh[:rank]  # (rank, in)
        up = u[:, :rank] * s[:rank]  # (out, rank)
        return cls(down, up, _bias(linear))

    def label(self) -> str:
        return f"lowrank:r{self.rank}"

    def _matmul(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.down.T) @ self.up.T  # (…, rank) → (…, out)


def choose_rank(
    s: torch.Tensor,
    vh: torch.Tensor,
    energy: float,
    max_error: float | None = None,
    inputs: torch.Tensor | None = None,
) -> int:
    """The smallest rank keeping ``energy`` of ``s²``, or, given ``max_error`` and
    calibration ``inputs (n, in)``, the smallest whose relative output error is within it.

    The output error of dropping directions ``j > r`` is ``Σ s_j² ‖X v_j‖²`` (the columns
    of ``X V S`` are orthogonal in the output space because ``U`` is orthonormal)."""
    if max_error is not None and inputs is not None:
        weights = s**2 * (inputs.float() @ vh.T).square().sum(dim=0)  # (rank_max,)
        target = max_error**2
    else:
        weights = s**2
        target = 1 - energy
    total = weights.sum().clamp(min=1e-30)
    dropped = (weights.flip(0).cumsum(0).flip(0) / total).tolist()  # dropped[r] = tail from r
    return next((r for r in range(1, len(dropped)) if dropped[r] <= target), len(dropped))
