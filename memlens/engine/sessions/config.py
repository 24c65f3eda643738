"""Typed, versioned config of the multi-turn session store (``memlens/engine/sessions/chat.py``).

Its own file because ``config.py`` holds the weight and KV-cache configs; this one only
says how much memory sessions may hold and how they are tiered, shared and spilled.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal

from memlens.errors import UsageError

SESSION_STORE_CONFIG_VERSION = 1


class Tier(StrEnum):
    """Where a session's own (not shared) KV cache lives between turns."""

    HOT = "hot"
    """Full precision tensors in memory: the next turn starts at once."""
    WARM = "warm"
    """Group-wise INT8/INT4 in memory: dequantized when the session is next used."""
    COLD = "cold"
    """A safetensors file in ``spill_dir``: read back when the session is next used."""


@dataclass(frozen=True)
class SessionStoreConfig:
    """How much memory sessions may hold and how they move between tiers."""

    budget_bytes: int = 1 << 30
    """Memory the store may hold for KV caches (bytes): hot and warm sessions, shared
    prefix blocks once, and the working copy of the session being decoded."""
    warm: bool = True
    """Whether sessions are quantized in memory (warm tier) before being spilled."""
    warm_bits: Literal[8, 4] = 8
    """Bits per value of warm sessions (INT4 values are packed two per byte)."""
    group_size: int = 32
    """Values per quantization group along the head dimension (must divide it)."""
    block_tokens: int = 16
    """Tokens per prefix block: sessions share full blocks of their opening prompt."""
    spill_dir: Path | None = None
    """Folder of the cold tier; ``None`` disables spilling (sessions stay in memory)."""
    decay: float = 0.8
    """Access frequency is multiplied by this per store operation since the last access
    (in (0, 1]): the smaller, the more recency outweighs frequency."""
    version: int = SESSION_STORE_CONFIG_VERSION

    def __post_init__(self) -> None:
        if self.budget_bytes < 1:
            raise UsageError(f"the session budget must be positive, got {self.budget_bytes} B")
        if self.warm_bits not in (8, 4):
            raise UsageError(f"warm_bits must be 8 or 4, got {self.warm_bits}")
        if self.group_size < 2 or self.group_size % 2:
            raise UsageError(f"group_size must be an even number ≥ 2, got {self.group_size}")
        if self.block_tokens < 1:
            raise UsageError(f"block_tokens must be at least 1, got {self.block_tokens}")
        if not 0 < self.decay <= 1:
            raise UsageError(f"decay must be in (0, 1], got {self.decay}")
        if self.version != SESSION_STORE_CONFIG_VERSION:
            raise UsageError(
                f"session store config version {self.version} is not supported "
                f"(this memlens reads version {SESSION_STORE_CONFIG_VERSION})"
            )

    @property
    def tiers(self) -> tuple[Tier, ...]:
        """The tiers this config enables, warmest first."""
        enabled = [Tier.HOT]
        if self.warm:
            enabled.append(Tier.WARM)
        if self.spill_dir is not None:
            enabled.append(Tier.COLD)
        return tuple(enabled)
