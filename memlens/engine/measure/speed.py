"""Speed measurements shared by ``memlens bench`` and ``benchmarks/engine_weights.py``:
decode and prefill tokens/s at batch 1, and the read-bandwidth floor.

Decoding one token reads every weight the forward touches once, so
``floor = measured read bandwidth ÷ bytes read per token`` bounds decode tokens/s from
above. Embedding tables are left out of the bytes read (a lookup reads one row).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from memlens.engine.decoding import DecodeStats, stream
from memlens.profiler.measure import module_bytes

BANDWIDTH_BYTES = 256 * 2**20


@dataclass(frozen=True)
class SpeedResult:
    """One model's speed at batch 1."""

    label: str
    weight_bytes: int
    """All parameters and buffers."""
    bytes_per_token: int
    """What one decode step reads (weights without embedding tables)."""
    prefill_tokens_per_s: float
    decode_tokens_per_s: float
    floor_tokens_per_s: float
    """The read-bandwidth bound on decode tokens/s."""

    @property
    def floor_ratio(self) -> float:
        """How far decode is from the floor (1.0 = at the floor)."""
        return self.floor_tokens_per_s / self.decode_tokens_per_s if self.decode_tokens_per_s else 0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready, with the floor ratio."""
        return {**asdict(self), "floor_ratio": self.floor_ratio}


def read_bandwidth(nbytes: int = BANDWIDTH_BYTES, repeats: int = 5) -> float:
    """Bytes per second this machine reads from memory (best of ``repeats`` full sums of a
    buffer far larger than the caches)."""
    buffer = torch.ones(nbytes // 4, dtype=torch.float32)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        float(buffer.sum())
        best = min(best, time.perf_counter() - start)
    return nbytes / best


def bytes_per_token(model: nn.Module) -> int:
    """Weight bytes one decode step reads: everything but embedding tables (a tied head
    reads its table in full, so it counts)."""
    head = getattr(model, "get_output_embeddings", lambda: None)()
    head_weight = getattr(head, "weight", None)
    tables = sum(
        module_bytes(m)
        for m in model.modules()
        if isinstance(m, nn.Embedding) and m.weight is not head_weight
    )
    return module_bytes(model) - tables


def decode_speed(
    model: nn.Module, prompt_tokens: int = 128, new_tokens: int = 32, repeats: int = 2
) -> tuple[float, float]:
    """Best prefill and decode tokens/s of ``repeats`` runs of a ``prompt_tokens`` prefill
    and ``new_tokens`` decode steps on random token ids, after a short warm-up run (lazy
    initialisation, caches)."""
    vocab = int(getattr(getattr(model, "config", None), "vocab_size", None) or 2)
    prompt = torch.randint(0, vocab, (1, prompt_tokens), generator=torch.Generator().manual_seed(0))
    for _ in stream(model, prompt[:, :8], 2):
        pass
    prefill = decode = 0.0
    for _ in range(repeats):
        stats = DecodeStats()
        for _ in stream(model, prompt, new_tokens, stats=stats):
            pass
        prefill = max(prefill, stats.prefill_tokens_per_s)
        decode = max(decode, stats.decode_tokens_per_s)
    return prefill, decode


def measure_speed(
    model: nn.Module,
    label: str,
    bandwidth: float,
    prompt_tokens: int = 128,
    new_tokens: int = 32,
    repeats: int = 2,
) -> SpeedResult:
    """:func:`decode_speed` with the model's bytes and its read-bandwidth floor."""
    prefill, decode = decode_speed(model, prompt_tokens, new_tokens, repeats)
    per_token = bytes_per_token(model)
    return SpeedResult(
        label, module_bytes(model), per_token, prefill, decode, bandwidth / per_token
    )
