"""AdamW with its two moments stored in 8 bits, block-wise (as 8-bit optimizers do).

Each moment tensor is cut into blocks of ``block_size`` elements; a block stores one
float32 absolute maximum and one byte per element: the index of the nearest value in a
*dynamic* code (a sign, a decade exponent and a linear fraction, so that small values keep
relative precision). The first moment uses the signed code, the second (never negative)
the unsigned one. Each step dequantizes a parameter's moments, applies the AdamW update
in float32 and quantizes them again. Tensors smaller than ``min_8bit_size`` keep float32
moments (their bytes do not matter; their precision might).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from memlens.errors import UsageError
from memlens.train.adamw_update import adamw_update_

_DECADES = 7  # 1e-6 … 1: the dynamic range the code covers below each block's maximum


def dynamic_code(signed: bool) -> torch.Tensor:
    """The 256 sorted float32 values a byte stands for, in [-1, 1] (signed) or [0, 1].

    Magnitudes are ``10**-e · f`` for ``e`` in 0…6 with ``f`` spread linearly over
    (0.1, 1]; more fraction steps go to the large decades, where the update is decided.
    """
    magnitudes_wanted = 127 if signed else 255
    steps = _fraction_steps(magnitudes_wanted)
    magnitudes: list[float] = []
    for exponent, count in enumerate(steps):
        scale = 10.0 ** -(_DECADES - 1 - exponent)
        for i in range(1, count + 1):
            magnitudes.append(scale * (0.1 + 0.9 * i / count))
    values = [0.0, *magnitudes]
    if signed:
        values += [-m for m in magnitudes]
        values.append(-1.0 - 1e-7)  # unused 256th code (keeps the table 256 long)
    code = torch.tensor(sorted(values), dtype=torch.float32)
    assert code.numel() == 256
    return code


def _fraction_steps(total: int) -> list[int]:
    """Steps per decade, smallest decade first, doubling upwards, summing to ``total``."""
    weights = [2**i for i in range(_DECADES)]
    steps = [max(1, total * w // sum(weights)) for w in weights]
    steps[-1] += total - sum(steps)
    return steps


def _midpoints(code: torch.Tensor) -> torch.Tensor:
    return (code[1:] + code[:-1]) / 2  # (255,)


class NearestCode:
    """The index of the code value nearest to each float, as ``torch.bucketize`` against
    the midpoints gives it, without its binary search (38 ns an element on one core).

    A float32's upper 16 bits (sign, exponent, 7 mantissa bits) name a range of floats; a
    table gives, per range, how many midpoints lie below its lowest float, and one compare
    against the next midpoint finishes the count. Exact while no range holds two midpoints
    (the code's values are further apart than 2⁻⁷ relative): :func:`nearest_code` checks
    that and otherwise keeps ``bucketize``.
    """

    def __init__(self, bounds: torch.Tensor, table: torch.Tensor) -> None:
        # (256,) float32: the midpoints, ascending, then +inf (nothing lies above it)
        self.bounds = torch.cat([bounds, torch.tensor([torch.inf])])
        self.table = table.to(torch.int32)  # (65536,): midpoints below each range's lowest

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` float32 → their code indices (int32, flattened)."""
        flat = values.reshape(-1)  # (n,)
        key = (flat.view(torch.int32) >> 16).add_(32768)  # (n,) in [0, 65536)
        index = self.table.index_select(0, key)  # (n,)
        return index.add_(self.bounds.index_select(0, index) < flat)


def nearest_code(code: torch.Tensor) -> NearestCode | None:
    """The table lookup for ``code`` (256 sorted float32 values), or None where a 16-bit
    range of floats would hold two of its midpoints."""
    bounds = _midpoints(code).contiguous()
    upper = torch.arange(-32768, 32768, dtype=torch.int32) << 16  # (65536,) range starts
    negative = upper < 0
    low_bits = torch.where(negative, upper | 0xFFFF, upper)  # each range's lowest float
    high_bits = torch.where(negative, upper, upper | 0xFFFF)  # and its highest
    low, high = low_bits.view(torch.float32), high_bits.view(torch.float32)
    table = torch.bucketize(low.nan_to_num(0.0), bounds)
    if bool((torch.bucketize(high.nan_to_num(0.0), bounds) - table > 1).any()):
        return None
    return NearestCode(bounds, table)


class BlockQuantized:
    """One float32 tensor stored as bytes indexing ``code``, one absmax per block."""

    def __init__(self, tensor: torch.Tensor, code: torch.Tensor, block_size: int) -> None:
        self.shape = tensor.shape
        self.numel = tensor.numel()
        self.block_size = block_size
        self.code = code
        self.bounds = _midpoints(code)
        self.nearest = nearest_code(code) if code.device.type == "cpu" else None
        blocks = -(-self.numel // block_size)
        self.indices = torch.empty(blocks * block_size, dtype=torch.uint8, device=tensor.device)
        self.absmax = torch.empty(blocks, dtype=torch.float32, device=tensor.device)
        self.store(tensor)

    def store(self, tensor: torch.Tensor) -> None:
        """Quantize ``tensor`` (of this shape) into the stored bytes."""
        flat = tensor.reshape(-1).float()  # (numel,)
        if self.numel < self.indices.numel():  # the last block padded with zeros
            flat = torch.cat([flat, flat.new_zeros(self.indices.numel() - self.numel)])
        blocks = flat.view(-1, self.block_size)  # (blocks, block)
        self.absmax.copy_(blocks.abs().amax(dim=1).clamp(min=1e-30))
        normalised = (blocks / self.absmax[:, None]).reshape(-1)  # in [-1, 1]
        if self.nearest is not None:
            self.indices.copy_(self.nearest(normalised))
        else:
            self.indices.copy_(torch.bucketize(normalised, self.bounds))

    def load(self) -> torch.Tensor:
        """The float32 tensor the bytes stand for."""
        values = self.code[self.indices.long()].view(-1, self.block_size)  # (blocks, block)
        return (values * self.absmax[:, None]).reshape(-1)[: self.numel].view(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes held: one per element (rounded up to whole blocks) plus the maxima."""
        return self.indices.numel() + 4 * self.absmax.numel()


class AdamW8bit(torch.optim.Optimizer):
    """AdamW (decoupled weight decay) with block-wise 8-bit moments; see the module
    docstring. ``state_bytes()`` is the exact size of the optimizer state."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        block_size: int = 2048,
        min_8bit_size: int = 4096,
    ) -> None:
        if lr <= 0 or not 0 <= betas[0] < 1 or not 0 <= betas[1] < 1 or block_size < 1:
            raise UsageError(f"AdamW8bit: bad lr {lr}, betas {betas} or block size {block_size}")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)
        self.block_size = block_size
        self.min_8bit_size = min_8bit_size
        self._codes: dict[tuple[bool, torch.device], torch.Tensor] = {}

    def _code(self, signed: bool, device: torch.device) -> torch.Tensor:
        key = (signed, device)
        if key not in self._codes:
            self._codes[key] = dynamic_code(signed).to(device)
        return self._codes[key]

    def _init_state(self, param: torch.Tensor) -> dict[str, Any]:
        zeros = torch.zeros_like(param, dtype=torch.float32)
        if param.numel() < self.min_8bit_size:
            return {"step": 0, "exp_avg": zeros, "exp_avg_sq": zeros.clone()}
        return {
            "step": 0,
            "exp_avg": BlockQuantized(zeros, self._code(True, param.device), self.block_size),
            "exp_avg_sq": BlockQuantized(zeros, self._code(False, param.device), self.block_size),
        }

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One AdamW update of every parameter with a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state.update(self._init_state(param))
                state["step"] += 1
                m_store, v_store = state["exp_avg"], state["exp_avg_sq"]
                quantized = isinstance(m_store, BlockQuantized)
                m = m_store.load() if quantized else m_store
                v = v_store.load() if quantized else v_store
                adamw_update_(param, m, v, param.grad.float(), state["step"], group)
                if quantized:
                    m_store.store(m)
                    v_store.store(v)
        return loss

    def state_bytes(self) -> int:
        """Exact bytes of all moment tensors (steps counters aside)."""
        return optimizer_state_bytes(self)


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of an optimizer's state tensors as stored: 8-bit blocks by their bytes and
    maxima, a tensor subclass (another library's 8-bit state) by its parts, a tensor
    shared between parameters (a code table) once."""
    seen: set[int] = set()
    total = 0
    for state in optimizer.state.values():
        for value in state.values():
            if isinstance(value, BlockQuantized):
                total += value.nbytes
            elif isinstance(value, torch.Tensor) and value.dim() > 0:
                total += _stored_bytes(value, seen)
    return total


def _stored_bytes(tensor: torch.Tensor, seen: set[int]) -> int:
    flatten = getattr(tensor, "__tensor_flatten__", None)
    if callable(flatten):
        names, _ = flatten()
        return sum(_stored_bytes(getattr(tensor, name), seen) for name in names)
    if tensor.data_ptr() in seen:
        return 0
    seen.add(tensor.data_ptr())
    return tensor.numel() * tensor.element_size()
