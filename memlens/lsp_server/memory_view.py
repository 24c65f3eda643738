"""A worker result (``kind`` estimate, profile or compress) → the memory view's whole payload.

The webview only draws what this builds: titles, figures, bars with their byte sizes and
texts, the legend, the budget line, the table's columns and cells (raw value for sorting,
formatted text for showing), the same rows grouped by layer kind (``summary_rows``: what
the table shows until the user asks for every layer), the checkpoint a compression wrote,
and the notes. Pure: no torch, no I/O. A result that cannot be
drawn raises :class:`~memlens.errors.MalformedReportError` naming the bad field.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from memlens.errors import MalformedReportError
from memlens.units import format_bytes, format_count, format_percent

VERSION = 2
"""Version of the payload's shape; the webview refuses versions it does not know (2 added
``summary_rows`` and ``checkpoint``)."""

Number = int | float
CellValue = str | int | float | None
SegmentKind = Literal["weights", "kv", "activations", "output", "measured", "before", "after"]
CellFormat = Literal["text", "bytes", "count", "percent"]

_LEGEND: dict[str, str] = {
    "weights": "Weights",
    "kv": "KV cache",
    "activations": "Prefill activations (estimate)",
    "output": "Largest block output (measured)",
    "measured": "Measured",
    "before": "Before",
    "after": "After",
}


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


def build_memory_view(result: Any, budget_bytes: int | None) -> MemoryView:
    """The view of one worker result; ``budget_bytes`` draws the budget line (None: none)."""
    report = _record(result, "report")
    kind = _string(report, "kind", "report")
    build = _BUILDERS.get(kind)
    if build is None:
        raise MalformedReportError(f'report.kind "{kind}" is not one of {", ".join(_BUILDERS)}')
    view = build(report)
    budget = None
    if budget_bytes is not None:
        exceeded = any(bar.total_bytes > budget_bytes for bar in view.totals)
        budget = Budget(budget_bytes, format_bytes(budget_bytes), exceeded)
    return dataclasses.replace(view, budget=budget)


# --- reading the worker result: every error names the field ---------------------------


def _record(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MalformedReportError(f"{where} is not an object")
    return value


def _field(record: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in record:
        raise MalformedReportError(f"{where}.{key} is missing")
    return record[key]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _bytes(record: Mapping[str, Any], key: str, where: str) -> Number:
    value = _field(record, key, where)
    if not _is_number(value) or value < 0:
        raise MalformedReportError(f"{where}.{key} is not a byte count: {_json_text(value)}")
    number: Number = value
    return number


def _optional_number(record: Mapping[str, Any], key: str, where: str) -> Number | None:
    value = record.get(key)
    if value is None:
        return None
    if not _is_number(value):
        raise MalformedReportError(f"{where}.{key} is not a number: {_json_text(value)}")
    number: Number = value
    return number


def _string(record: Mapping[str, Any], key: str, where: str) -> str:
    value = _field(record, key, where)
    if not isinstance(value, str):
        raise MalformedReportError(f"{where}.{key} is not a string")
    return value


def _array(record: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = _field(record, key, where)
    if not isinstance(value, list | tuple):  # tuples: a MemoryEstimate's own to_json
        raise MalformedReportError(f"{where}.{key} is not a list")
    return list(value)


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


# --- the estimate a profile or estimate result carries ---------------------------------


@dataclass(frozen=True)
class _EstimateLayer:
    name: str
    kind: str
    params: Number
    weights: Number
    kv: Number
    activations: Number
    tied_to: str | None


@dataclass(frozen=True)
class _Estimate:
    model: str
    dtype: str
    total: Number
    weights: Number
    kv: Number
    activations: Number
    exact: bool
    source: str
    layers: tuple[_EstimateLayer, ...]
    notes: tuple[str, ...]

    @property
    def label(self) -> str:
        exact = "exact" if self.exact else "approximate"
        return f"Estimate ({self.dtype}, {exact}, {self.source})"


def _parse_estimate(value: Any, where: str) -> _Estimate:
    e = _record(value, where)
    dtype = _string(e, "dtype", where)
    layers = []
    for i, raw in enumerate(_array(e, "layers", where)):
        at = f"{where}.layers[{i}]"
        layer = _record(raw, at)
        by_dtype = _record(_field(layer, "bytes_by_dtype", at), f"{at}.bytes_by_dtype")
        weights = (
            _bytes(by_dtype, dtype, f"{at}.bytes_by_dtype")
            if dtype in by_dtype
            else sum(_bytes(by_dtype, key, f"{at}.bytes_by_dtype") for key in by_dtype)
        )
        kind = layer.get("kind")
        tied_to = layer.get("tied_to")
        layers.append(
            _EstimateLayer(
                name=_string(layer, "name", at),
                kind=kind if isinstance(kind, str) else "",
                params=_bytes(layer, "params", at),
                weights=weights,
                kv=_optional_number(layer, "kv_cache_bytes", at) or 0,
                activations=_optional_number(layer, "activation_bytes", at) or 0,
                tied_to=tied_to if isinstance(tied_to, str) and tied_to else None,
            )
        )

    def total(get: Callable[[_EstimateLayer], Number], key: str) -> Number:
        given = _optional_number(e, key, where)
        return given if given is not None else sum(get(layer) for layer in layers)

    source = e.get("source")
    model = e.get("model")
    return _Estimate(
        model=model if isinstance(model, str) else "",
        dtype=dtype,
        total=_bytes(e, "total_bytes", where),
        weights=total(lambda layer: layer.weights, "weight_bytes"),
        kv=total(lambda layer: layer.kv, "kv_cache_bytes"),
        activations=total(lambda layer: layer.activations, "activations_bytes"),
        exact=e.get("exact") is True,
        source=source if isinstance(source, str) else "analytic",
        layers=tuple(layers),
        notes=_strings(e.get("notes")),
    )


# --- bars, columns, rows ----------------------------------------------------------------


def _size(num_bytes: Number) -> str:
    return format_bytes(round(num_bytes))


def _bar(label: str, *parts: tuple[SegmentKind, Number]) -> Bar:
    segments = tuple(Segment(kind, _LEGEND[kind], size, _size(size)) for kind, size in parts)
    total = sum(s.bytes for s in segments)
    return Bar(label, segments, total, _size(total))


def _stacked(label: str, weights: Number, kv: Number, activations: Number) -> Bar:
    return _bar(label, ("weights", weights), ("kv", kv), ("activations", activations))


def _legend(totals: Sequence[Bar], layers: Sequence[LayerGroup]) -> tuple[LegendItem, ...]:
    bars = [*totals, *(bar for group in layers for bar in group.bars)]
    kinds = dict.fromkeys(s.kind for bar in bars for s in bar.segments)
    return tuple(LegendItem(kind, _LEGEND[kind]) for kind in kinds)


_Columns = tuple[tuple[str, str, CellFormat], ...]

_ESTIMATE_COLUMNS: _Columns = (
    ("name", "Layer", "text"),
    ("kind", "Kind", "text"),
    ("params", "Params", "count"),
    ("weights", "Weights", "bytes"),
    ("kv", "KV cache", "bytes"),
    ("activations", "Prefill act.", "bytes"),
    ("total", "Total", "bytes"),
)
_MEASURED_COLUMNS: _Columns = (
    ("measured", "Measured weights", "bytes"),
    ("measuredKv", "Measured KV", "bytes"),
    ("measuredActivations", "Largest output", "bytes"),
)
_COMPRESS_COLUMNS: _Columns = (
    ("name", "Layer", "text"),
    ("scheme", "Scheme", "text"),
    ("before", "Before", "bytes"),
    ("after", "After", "bytes"),
    ("saved", "Saved", "bytes"),
    ("relError", "Rel. error", "percent"),
)


def _columns(columns: _Columns) -> tuple[Column, ...]:
    return tuple(Column(key, title, fmt != "text") for key, title, fmt in columns)


def _cell_text(value: CellValue, fmt: CellFormat) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if fmt == "bytes":
        return _size(value)
    if fmt == "percent":
        return format_percent(value)
    if fmt == "count":
        return format_count(round(value))
    return str(value)


def _rows(
    columns: _Columns, rows: Sequence[Mapping[str, CellValue]]
) -> tuple[dict[str, Cell], ...]:
    return tuple(
        {key: Cell(row[key], _cell_text(row[key], fmt)) for key, _, fmt in columns} for row in rows
    )


_INDEX = re.compile(r"\.\d+(?=\.|$)")


def _grouped(
    columns: _Columns, rows: Sequence[Mapping[str, CellValue]]
) -> list[dict[str, CellValue]]:
    """Rows whose names differ only in their block index, merged (``model.layers.*.mlp
    ×30``): bytes and counts summed, a percentage its largest, texts kept when they agree,
    else counted (``int4 ×12, int8 ×18``). Empty when nothing merges."""
    (name_key, _, _), *rest = columns
    groups: dict[str, list[Mapping[str, CellValue]]] = {}
    for row in rows:
        groups.setdefault(_INDEX.sub(".*", str(row[name_key])), []).append(row)
    if len(groups) == len(rows):
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


def _estimate_rows(estimate: _Estimate) -> list[dict[str, CellValue]]:
    return [
        {
            "name": f"{layer.name} (tied to {layer.tied_to})" if layer.tied_to else layer.name,
            "kind": layer.kind,
            "params": layer.params,
            "weights": layer.weights,
            "kv": layer.kv,
            "activations": layer.activations,
            "total": layer.weights + layer.kv + layer.activations,
        }
        for layer in estimate.layers
    ]


# --- one builder per result kind ---------------------------------------------------------


@dataclass(frozen=True)
class _MeasuredLayer:
    weights: Number
    kv: Number | None
    activations: Number | None


def _profile(report: Mapping[str, Any]) -> MemoryView:
    estimate = _parse_estimate(_field(report, "estimate", "report"), "report.estimate")
    totals = [_stacked(estimate.label, estimate.weights, estimate.kv, estimate.activations)]
    figures = [Figure("Estimated total", _size(estimate.total))]
    measured_by_name: dict[str, _MeasuredLayer] = {}
    if (raw_measured := report.get("measured")) is not None:
        measured = _record(raw_measured, "report.measured")
        for i, raw in enumerate(_array(measured, "layers", "report.measured")):
            at = f"report.measured.layers[{i}]"
            entry = _record(raw, at)
            measured_by_name[_string(entry, "name", at)] = _MeasuredLayer(
                weights=_bytes(entry, "bytes", at),
                kv=_optional_number(entry, "kv_cache_bytes", at),
                activations=_optional_number(entry, "activation_bytes", at),
            )
        weights = _bytes(measured, "weights_bytes", "report.measured")
        peak = _bytes(measured, "peak_bytes", "report.measured")
        totals += [
            _bar("Measured weights", ("measured", weights)),
            _bar("Measured peak", ("measured", peak)),
        ]
        figures += [
            Figure("Measured weights", _size(weights)),
            Figure("Measured peak", _size(peak)),
        ]
        if isinstance(device := measured.get("device"), str):
            figures.append(Figure("Device", device))
        speed = _optional_number(measured, "decode_tokens_per_s", "report.measured")
        if speed is not None:
            figures.append(Figure("Decode speed", f"{speed:.1f} tokens/s (without profiler hooks)"))
    has_measured = bool(measured_by_name)
    layers = []
    for layer in estimate.layers:
        bars = [_stacked("estimate", layer.weights, layer.kv, layer.activations)]
        if (m := measured_by_name.get(layer.name)) is not None:
            bars.append(
                _bar(
                    "measured",
                    ("measured", m.weights),
                    ("kv", m.kv or 0),
                    ("output", m.activations or 0),
                )
            )
        layers.append(LayerGroup(layer.name, tuple(bars)))
    rows = _estimate_rows(estimate)
    columns = _ESTIMATE_COLUMNS
    if has_measured:
        columns += _MEASURED_COLUMNS
        for row, layer in zip(rows, estimate.layers, strict=True):
            m = measured_by_name.get(layer.name)
            row["measured"] = m.weights if m else None
            row["measuredKv"] = m.kv if m else None
            row["measuredActivations"] = m.activations if m else None
    return MemoryView(
        title=f"Profile · {_string(report, 'model', 'report')}",
        subtitle="measured next to the static estimate"
        if has_measured
        else "estimate only: nothing measured",
        figures=tuple(figures),
        legend=_legend(totals, layers),
        totals=tuple(totals),
        budget=None,
        layers=tuple(layers),
        columns=_columns(columns),
        rows=_rows(columns, rows),
        summary_rows=_rows(columns, _grouped(columns, rows)),
        notes=(*_strings(report.get("notes")), *estimate.notes),
    )


def _estimate(report: Mapping[str, Any]) -> MemoryView:
    estimates = [
        _parse_estimate(e, f"report.estimates[{i}]")
        for i, e in enumerate(_array(report, "estimates", "report"))
    ]
    if not estimates:
        raise MalformedReportError("report.estimates is empty")
    first = estimates[0]
    several = len({e.model for e in estimates}) > 1  # a file's loads (the status bar's view)
    totals = [
        _stacked(f"{e.model} ({e.dtype})" if several else e.label, e.weights, e.kv, e.activations)
        for e in estimates
    ]
    layers = [
        LayerGroup(layer.name, (_stacked(first.dtype, layer.weights, layer.kv, layer.activations),))
        for layer in first.layers
    ]
    return MemoryView(
        title=f"Estimate · {_string(report, 'model', 'report')}",
        subtitle=f"per layer of {first.model} at {first.dtype}"
        if several
        else f"per layer at {first.dtype}",
        figures=tuple(
            Figure(f"{e.model} serving" if several else f"Total {e.dtype}", _size(e.total))
            for e in estimates
        ),
        legend=_legend(totals, layers),
        totals=tuple(totals),
        budget=None,
        layers=tuple(layers),
        columns=_columns(_ESTIMATE_COLUMNS),
        rows=_rows(_ESTIMATE_COLUMNS, _estimate_rows(first)),
        summary_rows=_rows(_ESTIMATE_COLUMNS, _grouped(_ESTIMATE_COLUMNS, _estimate_rows(first))),
        notes=(*_strings(report.get("notes")), *first.notes),
    )


@dataclass(frozen=True)
class _CompressLayer:
    name: str
    scheme: str
    before: Number
    after: Number
    rel_error: Number | None


def _compress(report: Mapping[str, Any]) -> MemoryView:
    layers = []
    for i, raw in enumerate(_array(report, "layers", "report")):
        at = f"report.layers[{i}]"
        layer = _record(raw, at)
        scheme = layer.get("scheme")
        layers.append(
            _CompressLayer(
                name=_string(layer, "name", at),
                scheme=scheme if isinstance(scheme, str) else "",
                before=_bytes(layer, "bytes_before", at),
                after=_bytes(layer, "bytes_after", at),
                rel_error=_optional_number(layer, "rel_error", at),
            )
        )
    before = sum(layer.before for layer in layers)
    after = sum(layer.after for layer in layers)
    saved = f"{_size(before - after)} ({format_percent(1 - after / before)})" if before > 0 else "—"

    def pair(a: str, b: str) -> str:
        x = _optional_number(report, a, "report")
        y = _optional_number(report, b, "report")
        return "not measured" if x is None or y is None else f"{x:.2f} → {y:.2f}"

    # the engine's report counts the compressed layers, and the whole model apart
    whole_before = _optional_number(report, "weight_bytes_before", "report")
    whole_after = _optional_number(report, "weight_bytes_after", "report")
    counted = f"{len(layers)} compressed layers"
    if whole_before is not None and whole_after is not None and whole_before > 0:
        sizes = [
            Figure("Model weights before", _size(whole_before)),
            Figure("Model weights after", _size(whole_after)),
            Figure(
                "Saved",
                f"{_size(whole_before - whole_after)} "
                f"({format_percent(1 - whole_after / whole_before)})",
            ),
            Figure(f"The {counted}", f"{_size(before)} → {_size(after)}"),
        ]
    else:
        sizes = [
            Figure(f"Before ({counted})", _size(before)),
            Figure(f"After ({counted})", _size(after)),
            Figure("Saved", saved),
        ]
    out = report.get("out")
    figures = (
        *sizes,
        Figure("Perplexity", pair("ppl_before", "ppl_after")),
        Figure("Tokens/s", pair("tokens_per_s_before", "tokens_per_s_after")),
    )
    config = report.get("config")
    config = config if isinstance(config, Mapping) else {}
    parts = [
        config.get("scheme"),
        f"group {config['group_size']}" if config.get("group_size") else None,
        f"from {config['from']}" if config.get("from") else None,
    ]
    scheme = ", ".join(
        str(p) for p in parts if isinstance(p, str | int | float) and not isinstance(p, bool)
    )
    quality = "measured" if report.get("measured") is True else "sizes exact, quality not measured"
    fallback_notes = _fallback_notes(config, layers)
    if fallback_notes:
        fell = sum(layer.scheme != config.get("scheme") for layer in layers)
        scheme += f" ({fell} of {len(layers)} layers fell back)"
    totals = [_bar("Before", ("before", before)), _bar("After", ("after", after))]
    groups = [
        LayerGroup(
            layer.name,
            (_bar("before", ("before", layer.before)), _bar("after", ("after", layer.after))),
        )
        for layer in layers
    ]
    rows: list[dict[str, CellValue]] = [
        {
            "name": layer.name,
            "scheme": layer.scheme,
            "before": layer.before,
            "after": layer.after,
            "saved": layer.before - layer.after,
            "relError": layer.rel_error,
        }
        for layer in layers
    ]
    return MemoryView(
        title=f"Compress · {_string(report, 'model', 'report')}",
        subtitle=f"{scheme or 'compression plan'} · {quality}",
        figures=figures,
        legend=_legend(totals, groups),
        totals=tuple(totals),
        budget=None,
        layers=tuple(groups),
        columns=_columns(_COMPRESS_COLUMNS),
        rows=_rows(_COMPRESS_COLUMNS, rows),
        notes=(*fallback_notes, *_strings(report.get("notes"))),
        summary_rows=_rows(_COMPRESS_COLUMNS, _grouped(_COMPRESS_COLUMNS, rows)),
        checkpoint=out if isinstance(out := report.get("out"), str) and out else None,
    )


def _fallback_notes(config: Mapping[str, Any], layers: Sequence[_CompressLayer]) -> list[str]:
    """Why layers did not get the scheme asked for (INT4 falls back to INT8 per matrix)."""
    scheme = config.get("scheme")
    if scheme != "int4":
        return []
    fell = [layer for layer in layers if layer.scheme and layer.scheme != scheme]
    if not fell:
        return []
    kept = sorted({layer.scheme for layer in fell})
    group = config.get("group_size")
    return [
        f"{len(fell)} of {len(layers)} layers fell back to {', '.join(kept)}: INT4 with group "
        f"{group} needs input widths that divide by {group} (and output widths by 16). "
        "Compress… offers the group sizes this model's widths divide and marks one."
    ]


_BUILDERS: dict[str, Callable[[Mapping[str, Any]], MemoryView]] = {
    "profile": _profile,
    "estimate": _estimate,
    "compress": _compress,
}
