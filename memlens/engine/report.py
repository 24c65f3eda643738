"""``CompressionReport`` (DESIGN.md §4): what a compression saved and what it cost."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from memlens.engine.sensitivity import LayerChoice


@dataclass(frozen=True)
class CompressionReport:
    """Measured before and after one compression run. Bytes are bytes; speeds are
    decode tokens per second at batch 1; quality is perplexity for causal LMs and the mean
    cosine of sentence embeddings for encoders (the other is None)."""

    model: str
    config: dict[str, Any]
    layers: tuple[LayerChoice, ...]
    weight_bytes_before: int
    weight_bytes_after: int
    ppl_before: float | None = None
    ppl_after: float | None = None
    embedding_cosine: float | None = None
    tokens_per_s_before: float | None = None
    tokens_per_s_after: float | None = None
    out: str | None = None
    """Where the compressed checkpoint was written."""
    notes: tuple[str, ...] = field(default=())

    @property
    def ppl_delta(self) -> float | None:
        """Relative perplexity change (0.01 = 1% worse)."""
        if self.ppl_before is None or self.ppl_after is None:
            return None
        return self.ppl_after / self.ppl_before - 1

    def to_json(self) -> dict[str, Any]:
        """The worker's and the CLI's ``--json`` form (``kind`` and ``measured`` added)."""
        data = asdict(self)
        data["ppl_delta"] = self.ppl_delta
        return {"kind": "compress", "measured": True, **data}
