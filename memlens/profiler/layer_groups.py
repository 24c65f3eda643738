"""Collapse identical layers for display: ``model.layers.0–31 ×32``."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from memlens.profiler.estimate import LayerMemory
from memlens.profiler.training import TrainingBlock

_INDEXED = re.compile(r"^(?P<prefix>.*\.)(?P<index>\d+)$")


@dataclass(frozen=True)
class LayerGroup:
    """Layers with identical weights and KV footprint, shown as one row."""

    label: str
    count: int
    layer: LayerMemory
    """One representative; per-layer figures."""
    names: tuple[str, ...]
    """Every layer of the group, in order."""


def _signature(layer: LayerMemory) -> tuple[object, ...]:
    return (
        layer.kind,
        layer.params,
        tuple(sorted(layer.bytes_by_dtype.items())),
        layer.kv_bytes_per_token,
        layer.sliding_window,
        layer.tied_to,
    )


def format_indices(indices: list[int]) -> str:
    """``[0..31]`` → ``0–31``; ``[0, 2, …, 40]`` → ``0,2,…,40``; short lists spelled out."""
    if len(indices) == 1:
        return str(indices[0])
    steps = {b - a for a, b in itertools.pairwise(indices)}
    if steps == {1}:
        return f"{indices[0]}–{indices[-1]}"
    if len(steps) == 1 and len(indices) > 3:
        return f"{indices[0]},{indices[1]},…,{indices[-1]}"
    return ",".join(str(i) for i in indices)


def group_layers(layers: tuple[LayerMemory, ...]) -> list[LayerGroup]:
    """Group ``prefix.N`` blocks by identical signature, in order of first appearance."""
    # prefix, indices, representative, names
    entries: list[tuple[str, list[int], LayerMemory, list[str]]] = []
    entry_of: dict[tuple[object, ...], int] = {}
    for layer in layers:
        match = _INDEXED.match(layer.name)
        if match is None:
            entries.append((layer.name, [], layer, [layer.name]))
            continue
        key = (match["prefix"], *_signature(layer))
        if key not in entry_of:
            entry_of[key] = len(entries)
            entries.append((match["prefix"], [], layer, []))
        entries[entry_of[key]][1].append(int(match["index"]))
        entries[entry_of[key]][3].append(layer.name)
    return [
        LayerGroup(
            prefix + format_indices(indices) if len(indices) > 1 else layer.name,
            max(1, len(indices)),
            layer,
            tuple(names),
        )
        for prefix, indices, layer, names in entries
    ]


def group_training_blocks(
    blocks: tuple[TrainingBlock, ...],
) -> list[tuple[str, int, TrainingBlock]]:
    """Identical ``prefix.N`` blocks as one row: (label, count, representative)."""
    rows: list[tuple[str, list[int], TrainingBlock]] = []
    index_of: dict[tuple[object, ...], int] = {}
    for block in blocks:
        match = _INDEXED.match(block.name)
        if match is None:
            rows.append((block.name, [], block))
            continue
        key = (match["prefix"], *(v for k, v in vars(block).items() if k != "name"))
        if key not in index_of:
            index_of[key] = len(rows)
            rows.append((match["prefix"], [], block))
        rows[index_of[key]][1].append(int(match["index"]))
    return [
        (
            prefix + format_indices(indices) if len(indices) > 1 else block.name,
            len(indices) or 1,
            block,
        )
        for prefix, indices, block in rows
    ]
