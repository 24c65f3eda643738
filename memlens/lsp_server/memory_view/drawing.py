"""What every kind of report draws with: stacked bars, the legend of the kinds drawn,
table columns, cells (raw value and text) and the rows grouped by layer kind."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Literal

from memlens.lsp_server.memory_view.payload import (
    LEGEND,
    Bar,
    Cell,
    CellValue,
    Column,
    Figure,
    LayerGroup,
    LegendItem,
    MemoryView,
    Number,
    Segment,
    SegmentKind,
)
from memlens.units import format_bytes, format_count, format_percent

CellFormat = Literal["text", "bytes", "count", "percent"]
Columns = tuple[tuple[str, str, CellFormat], ...]
"""A table's columns: (key, title, format); the first is the row's name."""


def size(num_bytes: Number) -> str:
    """Bytes as the view shows them (``945.7 MiB``)."""
    return format_bytes(round(num_bytes))


def bar(label: str, *parts: tuple[SegmentKind, Number]) -> Bar:
    """A stacked bar of ``(kind, bytes)`` parts, zero-sized ones included."""
    segments = tuple(Segment(kind, LEGEND[kind], part, size(part)) for kind, part in parts)
    total = sum(s.bytes for s in segments)
    return Bar(label, segments, total, size(total))


def legend(totals: Sequence[Bar], layers: Sequence[LayerGroup]) -> tuple[LegendItem, ...]:
    """Each segment kind the view draws, in order of first appearance."""
    bars = [*totals, *(b for group in layers for b in group.bars)]
    kinds = dict.fromkeys(s.kind for b in bars for s in b.segments)
    return tuple(LegendItem(kind, LEGEND[kind]) for kind in kinds)


def columns(spec: Columns) -> tuple[Column, ...]:
    """The payload's columns: every column but a text one is numeric."""
    return tuple(Column(key, title, fmt != "text") for key, title, fmt in spec)


def _cell_text(value: CellValue, fmt: CellFormat) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if fmt == "bytes":
        return size(value)
    if fmt == "percent":
        return format_percent(value)
    if fmt == "count":
        return format_count(round(value))
    return str(value)


def rows(spec: Columns, values: Sequence[Mapping[str, CellValue]]) -> tuple[dict[str, Cell], ...]:
    """Each row's raw values as cells with their texts."""
    return tuple(
        {key: Cell(row[key], _cell_text(row[key], fmt)) for key, _, fmt in spec} for row in values
    )


_INDEX = re.compile(r"\.\d+(?=\.|$)")


def grouped(spec: Columns, values: Sequence[Mapping[str, CellValue]]) -> list[dict[str, CellValue]]:
    """Rows whose names differ only in their block index, merged (``model.layers.*.mlp
    ×30``): bytes and counts summed, a percentage its largest, texts kept when they agree,
    else counted (``int4 ×12, int8 ×18``). Empty when nothing merges."""
    (name_key, _, _), *rest = spec
    groups: dict[str, list[Mapping[str, CellValue]]] = {}
    for row in values:
        groups.setdefault(_INDEX.sub(".*", str(row[name_key])), []).append(row)
    if len(groups) == len(values):
        return []
    merged: list[dict[str, CellValue]] = []
    for name, members in groups.items():
        group: dict[str, CellValue] = {
            name_key: f"{name} ×{len(members)}" if len(members) > 1 else members[0][name_key]
        }
        for key, _, fmt in rest:
            group[key] = _merged([m[key] for m in members], fmt)
        merged.append(group)
    return merged


def _merged(values: Sequence[CellValue], fmt: CellFormat) -> CellValue:
    numbers = [v for v in values if isinstance(v, int | float)]
    if fmt == "text" or not numbers:
        texts = [str(v) if v is not None else "—" for v in values]
        counts = {t: texts.count(t) for t in dict.fromkeys(texts)}
        return texts[0] if len(counts) == 1 else ", ".join(f"{t} ×{n}" for t, n in counts.items())
    return max(numbers) if fmt == "percent" else sum(numbers)


def view(
    *,
    title: str,
    subtitle: str,
    figures: Sequence[Figure],
    totals: Sequence[Bar],
    layers: Sequence[LayerGroup],
    spec: Columns,
    values: Sequence[Mapping[str, CellValue]],
    notes: Sequence[str],
    checkpoint: str | None = None,
) -> MemoryView:
    """The view of these bars and this table: the legend of the kinds the bars draw, the
    rows grouped by layer kind; ``build_memory_view`` adds the budget line."""
    return MemoryView(
        title=title,
        subtitle=subtitle,
        figures=tuple(figures),
        legend=legend(totals, layers),
        totals=tuple(totals),
        budget=None,
        layers=tuple(layers),
        columns=columns(spec),
        rows=rows(spec, values),
        summary_rows=rows(spec, grouped(spec, values)),
        notes=tuple(notes),
        checkpoint=checkpoint,
    )
