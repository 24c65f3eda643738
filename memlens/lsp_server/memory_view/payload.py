"""The memory view's payload: the dataclasses ``to_json`` turns into the
``memlens/memoryReport`` notification (vscode-extension/src/webviews/model/memory.ts reads
the same shape), and the legend's name for each segment kind."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

VERSION = 3
"""Version of the payload's shape; the webview refuses versions it does not know (2 added
``summary_rows`` and ``checkpoint``; 3 added the training segment kinds, which a version-2
view would refuse: a version-2 payload is still a valid version-3 one)."""

Number = int | float
CellValue = str | int | float | None
SegmentKind = Literal[
    "weights",
    "kv",
    "activations",
    "output",
    "measured",
    "before",
    "after",
    "adapters",
    "gradients",
    "optimizer",
    "master",
    "saved",
    "temporaries",
    "transient",
]

LEGEND: dict[SegmentKind, str] = {
    "weights": "Weights",
    "kv": "KV cache",
    "activations": "Prefill activations (estimate)",
    "output": "Largest block output (measured)",
    "measured": "Measured",
    "before": "Before",
    "after": "After",
    "adapters": "LoRA adapters",
    "gradients": "Gradients",
    "optimizer": "Optimizer states",
    "master": "fp32 master weights",
    "saved": "Activations saved for backward",
    "temporaries": "Step temporaries (estimate)",
    "transient": "Held during the step (measured)",
}
"""The legend's name of each segment kind (the training kinds are documented where
memory_view/training.py draws them)."""


@dataclass(frozen=True)
class Segment:
    """One part of a bar: ``bytes`` of one kind, with its legend label and size text."""

    kind: SegmentKind
    label: str
    bytes: Number
    text: str


@dataclass(frozen=True)
class Bar:
    """A stacked bar; ``total_bytes`` is the sum of its segments (bytes)."""

    label: str
    segments: tuple[Segment, ...]
    total_bytes: Number
    total_text: str


@dataclass(frozen=True)
class LayerGroup:
    """The bars of one layer (estimate, and measured or before/after beside it)."""

    name: str
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class Figure:
    """A headline figure, e.g. ``("Estimated total", "945.7 MiB")``."""

    label: str
    text: str


@dataclass(frozen=True)
class LegendItem:
    """A segment kind drawn somewhere in the view and its name."""

    kind: SegmentKind
    label: str


@dataclass(frozen=True)
class Budget:
    """The memory budget line: ``bytes``, its text, and whether a total bar exceeds it."""

    bytes: int
    text: str
    exceeded: bool


@dataclass(frozen=True)
class Column:
    """A table column; numeric columns align right and sort largest first."""

    key: str
    title: str
    numeric: bool


@dataclass(frozen=True)
class Cell:
    """A table cell: the raw ``value`` (sorting; bytes are bytes) and the ``text`` shown."""

    value: CellValue
    text: str


@dataclass(frozen=True)
class MemoryView:
    """What the memory view draws; ``to_json`` is the ``memlens/memoryReport`` payload."""

    title: str
    subtitle: str
    figures: tuple[Figure, ...]
    legend: tuple[LegendItem, ...]
    totals: tuple[Bar, ...]
    budget: Budget | None
    layers: tuple[LayerGroup, ...]
    columns: tuple[Column, ...]
    rows: tuple[Mapping[str, Cell], ...]
    """One mapping per table row, from column key to cell."""
    notes: tuple[str, ...]
    summary_rows: tuple[Mapping[str, Cell], ...] = ()
    """The rows grouped by layer kind (``model.layers.*.mlp.up_proj ×30``; a percentage
    column holds the group's largest); empty when grouping would not shorten the table."""
    checkpoint: str | None = None
    """The folder a compression wrote its checkpoint to (absolute), else None."""
    version: int = VERSION

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types only (lists, dicts, str, numbers, None)."""
        plain = _plain(self)
        assert isinstance(plain, dict)
        return plain


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value
