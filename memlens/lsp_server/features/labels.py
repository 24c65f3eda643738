"""The short texts hints, lenses, hovers, diagnostics and the status bar show (formatted
once, at the edge). Every figure says what it counts: ``weights ≈ …`` is the weights
alone at the load's dtype, ``serving ≈ … at 4k ctx`` adds the KV cache and the prefill's
activations for that context."""

from __future__ import annotations

from typing import NamedTuple

from memlens.lsp_server.analysis import ClassTotal, LayerFinding, ModelSize, Position, layer_bytes
from memlens.profiler.estimate import MemoryEstimate
from memlens.units import format_bytes, format_count

HINT_MAX_CHARS = 43
"""VS Code cuts a line's inlay hints past this many characters (its
``editor.inlayHints.maximumLength`` default): every label stays within it, and what does
not fit goes in the hint's tooltip."""


class Hint(NamedTuple):
    """An inlay hint: ``label`` at ``position``, and the ``tooltip`` shown on pointing."""

    position: Position
    label: str
    tooltip: str | None = None


def load_label(estimate: MemoryEstimate) -> str:
    """``weights ≈ 12.6 GiB bf16 · KV 512.0 KiB/tok`` (``int4 g64``): the inline hint,
    kept short (the serving total and the per-block table are in hover)."""
    label = f"{weights_label(estimate.weight_bytes)} {dtype_label(estimate)}"
    if estimate.kv_bytes_per_token:
        label += f" · KV {format_bytes(estimate.kv_bytes_per_token)}/tok"
    return label


def dtype_label(estimate: MemoryEstimate) -> str:
    """``bf16``; ``int4 g64`` for INT4 with the group size asked (a matrix whose width it
    does not divide takes a smaller one or INT8, as the estimate's notes say)."""
    if estimate.dtype == "int4":
        return f"int4 g{estimate.group_size}"
    return estimate.dtype


def weights_label(num_bytes: int) -> str:
    """``weights ≈ 25.1 GiB``: weights alone (the hint, the status bar and its tooltip)."""
    return f"weights ≈ {format_bytes(num_bytes)}"


def context_label(tokens: int) -> str:
    """``4k`` for 4096 tokens, ``32k`` for 32768, ``1.5k`` for 1536; ``512`` below 1024."""
    if tokens < 1024:
        return str(tokens)
    thousands = tokens / 1024
    return f"{thousands:.0f}k" if thousands == int(thousands) else f"{thousands:.1f}k"


def serving_label(estimate: MemoryEstimate) -> str:
    """``serving ≈ 29.9 GiB at 4k ctx`` (``× batch 8`` when batched): weights + the KV
    cache for that context + the prefill's activations, the figure budgets are checked
    against."""
    batch = f" × batch {estimate.batch}" if estimate.batch > 1 else ""
    return (
        f"serving ≈ {format_bytes(estimate.total_bytes)} at "
        f"{context_label(estimate.context)} ctx{batch}"
    )


def layer_label(layer: LayerFinding) -> str | None:
    """``45.1M params · 172.0 MiB fp32``; ``×12`` when a comprehension repeats it."""
    size = layer_bytes(layer)
    if layer.params is None or layer.count is None or size is None:
        return None
    times = f"×{layer.count} " if layer.count != 1 else ""
    return (
        f"{times}{format_count(layer.params * layer.count)} params · {format_bytes(size)} "
        f"{layer.dtype}"
    )


def class_label(total: ClassTotal) -> str:
    """``Σ 6.7B params · 25.1 GiB fp32`` (``≥`` when something could not be counted)."""
    sign = "Σ" if total.complete else "≥"
    return f"{sign} {format_count(total.params)} params · {format_bytes(total.bytes)}"


def _unknown_note(size: ModelSize) -> str:
    count = len(size.unknown)
    if count == 1:
        return f" · {size.unknown[0]} unknown"
    return f" · {count} layers unknown" if count else ""


def size_label(size: ModelSize) -> str | None:
    """``Σ 124.5M params · 474.8 MiB (GPTConfig defaults)``; ``≥ 45.1M params · 172.0 MiB ·
    2 layers unknown`` for a floor; None when nothing is known (never ``≥ 0``)."""
    if not size.params:
        return None
    sign = "≥" if size.unknown else "Σ"
    defaults = f" ({size.defaults_of} defaults)" if size.defaults_of else ""
    return (
        f"{sign} {format_count(size.params)} params · {format_bytes(size.bytes)}"
        f"{_unknown_note(size)}{defaults}"
    )


def build_label(size: ModelSize) -> str | None:
    """``354.9M params · 1.3 GiB fp32`` at a call that builds a module (``≥`` for a floor)."""
    if not size.params:
        return None
    floor = "≥ " if size.unknown else ""
    return (
        f"{floor}{format_count(size.params)} params · {format_bytes(size.bytes)} {size.dtype}"
        f"{_unknown_note(size)}"
    )
