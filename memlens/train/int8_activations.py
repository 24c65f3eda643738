"""INT8 storage of the activations autograd saves for the backward pass.

Inside :func:`int8_activations`, each floating-point tensor an op saves for backward is
quantized to INT8 in per-token groups along its last dimension (the reference quantizer
``memlens/kernels/formats.py: quantize_groups``: ``x ≈ q · scale + minimum``, one float32
scale and minimum per group) and dequantized when backward needs it. Parameters are kept
as they are and not counted (they are not activations), and so are tensors too small to
matter. A tensor saved by several ops (the input of ``q_proj``, ``k_proj`` and ``v_proj``)
is quantized and counted once.

Which ops it applies to is chosen by module class: with ``modules=()`` every op in the
forward pass; with e.g. ``modules=("Linear",)`` only the ops inside modules of those
classes (``Linear`` matches ``nn.Linear`` and its subclasses by name).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.autograd.graph import saved_tensors_hooks

from memlens.errors import UsageError
from memlens.kernels.formats import dequantize_groups, quantize_groups

_BITS = 8


@dataclass(frozen=True)
class Int8ActivationConfig:
    """Which saved tensors are stored in INT8 and how."""

    group_size: int = 128
    """Elements per scale/minimum along the last dimension; a tensor whose last dimension
    does not divide by it uses one group per token (row)."""
    modules: tuple[str, ...] = ()
    """Module class names whose ops are covered; empty: every op of the forward pass."""
    min_elements: int = 1024
    """Tensors with fewer elements are kept as they are."""
    version: int = 1

    def __post_init__(self) -> None:
        if self.group_size < 2:
            raise UsageError(f"the activation group size must be at least 2, got {self.group_size}")


@dataclass
class SavedBytes:
    """What the saved activations took, in bytes: the tensors autograd handed over (each
    once, at their own dtype; views of one storage count apart), and as stored (INT8
    values plus scales and minimums, or the tensor kept as it was)."""

    original: int = 0
    stored: int = 0
    tensors: int = 0
    """How many saved tensors were quantized."""

    @property
    def ratio(self) -> float:
        """``original / stored`` (1.0 when nothing was saved)."""
        return self.original / self.stored if self.stored else 1.0


@dataclass(frozen=True)
class _Quantized:
    values: torch.Tensor  # (…, D) uint8
    scale: torch.Tensor  # (…, D/g) float32
    low: torch.Tensor
    group_size: int
    dtype: torch.dtype
    shape: torch.Size


def _group_for(last: int, group_size: int) -> int:
    return group_size if last % group_size == 0 else last


class _Seen:
    """Tensors already packed in this block, so one saved by several ops is stored once.
    Only weak references are held: a freed tensor's address may be reused, and what
    backward has released must not be kept alive here."""

    def __init__(self) -> None:
        self._packed: dict[tuple[int, int, tuple[int, ...]], tuple[Any, Any]] = {}

    @staticmethod
    def _key(tensor: torch.Tensor) -> tuple[int, int, tuple[int, ...]]:
        return (tensor.data_ptr(), int(tensor.storage_offset()), tuple(tensor.shape))

    def get(self, tensor: torch.Tensor) -> Any:
        hit = self._packed.get(self._key(tensor))
        return hit[1]() if hit is not None and hit[0]() is tensor else None

    def put(self, tensor: torch.Tensor, packed: Any) -> None:
        if len(self._packed) > 4096:
            self._packed = {k: v for k, v in self._packed.items() if v[1]() is not None}
        self._packed[self._key(tensor)] = (weakref.ref(tensor), weakref.ref(packed))


@dataclass
class _Packer:
    config: Int8ActivationConfig
    parameters: set[int]
    saved: SavedBytes = field(default_factory=SavedBytes)
    seen: _Seen = field(default_factory=_Seen)

    def pack(self, tensor: torch.Tensor) -> Any:
        if tensor.untyped_storage().data_ptr() in self.parameters:
            return tensor
        if (hit := self.seen.get(tensor)) is not None:
            return hit
        nbytes = tensor.numel() * tensor.element_size()
        self.saved.original += nbytes
        if not tensor.is_floating_point() or tensor.numel() < self.config.min_elements:
            self.saved.stored += nbytes
            self.seen.put(tensor, tensor)
            return tensor
        group = _group_for(tensor.shape[-1], self.config.group_size)
        values, scale, low = quantize_groups(tensor.detach(), _BITS, group)
        packed = _Quantized(values, scale, low, group, tensor.dtype, tensor.shape)
        self.saved.stored += values.numel() + 4 * (scale.numel() + low.numel())
        self.saved.tensors += 1
        self.seen.put(tensor, packed)
        return packed

    def unpack(self, packed: Any) -> torch.Tensor:
        if not isinstance(packed, _Quantized):
            return packed  # type: ignore[no-any-return]
        return dequantize_groups(
            packed.values, packed.scale, packed.low, packed.group_size, packed.dtype
        ).reshape(packed.shape)


def _parameter_storages(model: nn.Module) -> set[int]:
    return {p.untyped_storage().data_ptr() for p in model.parameters()}


def _covered(module: nn.Module, names: tuple[str, ...]) -> bool:
    return any(cls.__name__ in names for cls in type(module).__mro__)


@contextlib.contextmanager
def int8_activations(
    model: nn.Module, config: Int8ActivationConfig | None = None
) -> Iterator[SavedBytes]:
    """Store what autograd saves inside ``model``'s forward passes in INT8 while the block
    runs; yields the running :class:`SavedBytes` count (forward passes add to it)."""
    config = config or Int8ActivationConfig()
    packer = _Packer(config, _parameter_storages(model))
    if not config.modules:
        with saved_tensors_hooks(packer.pack, packer.unpack):
            yield packer.saved
        return
    stack: list[saved_tensors_hooks] = []

    def enter(module: nn.Module, args: Any) -> None:
        hooks = saved_tensors_hooks(packer.pack, packer.unpack)
        hooks.__enter__()
        stack.append(hooks)

    def leave(module: nn.Module, args: Any, output: Any) -> None:
        stack.pop().__exit__(None, None, None)

    handles = []
    for module in model.modules():
        if _covered(module, config.modules):
            handles.append(module.register_forward_pre_hook(enter))
            handles.append(module.register_forward_hook(leave))
    try:
        yield packer.saved
    finally:
        for handle in handles:
            handle.remove()
        while stack:
            stack.pop().__exit__(None, None, None)


@contextlib.contextmanager
def count_saved_bytes(model: nn.Module) -> Iterator[SavedBytes]:
    """Count what autograd saves for backward inside the block, stored as is (each
    tensor once, parameters left out): the baseline :func:`int8_activations` is compared
    with."""
    parameters = _parameter_storages(model)
    saved = SavedBytes()
    seen = _Seen()

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.untyped_storage().data_ptr() in parameters or seen.get(tensor) is not None:
            return tensor
        seen.put(tensor, tensor)
        nbytes = tensor.numel() * tensor.element_size()
        saved.original += nbytes
        saved.stored += nbytes
        return tensor

    with saved_tensors_hooks(pack, lambda tensor: tensor):
        yield saved
