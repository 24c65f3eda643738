"""Inference reports (``kind`` estimate, profile or compress) → the memory view: the
estimate's stacked bars per layer (weights, KV cache, prefill activations), measured bars
beside them, before beside after a compression."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from memlens.errors import MalformedReportError
from memlens.lsp_server.memory_view import drawing as draw
from memlens.lsp_server.memory_view.drawing import Columns
from memlens.lsp_server.memory_view.payload import (
    Bar,
    CellValue,
    Figure,
    LayerGroup,
    MemoryView,
    Number,
)
from memlens.lsp_server.memory_view.reading import (
    array,
    byte_count,
    field,
    optional_number,
    record,
    string,
    strings,
)
from memlens.units import format_percent

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
    e = record(value, where)
    dtype = string(e, "dtype", where)
    layers = []
    for i, raw in enumerate(array(e, "layers", where)):
        at = f"{where}.layers[{i}]"
        layer = record(raw, at)
        by_dtype = record(field(layer, "bytes_by_dtype", at), f"{at}.bytes_by_dtype")
        weights = (
            byte_count(by_dtype, dtype, f"{at}.bytes_by_dtype")
            if dtype in by_dtype
            else sum(byte_count(by_dtype, key, f"{at}.bytes_by_dtype") for key in by_dtype)
        )
        kind = layer.get("kind")
        tied_to = layer.get("tied_to")
        layers.append(
            _EstimateLayer(
                name=string(layer, "name", at),
                kind=kind if isinstance(kind, str) else "",
                params=byte_count(layer, "params", at),
                weights=weights,
                kv=optional_number(layer, "kv_cache_bytes", at) or 0,
                activations=optional_number(layer, "activation_bytes", at) or 0,
                tied_to=tied_to if isinstance(tied_to, str) and tied_to else None,
            )
        )

    def total(get: Callable[[_EstimateLayer], Number], key: str) -> Number:
        given = optional_number(e, key, where)
        return given if given is not None else sum(get(layer) for layer in layers)

    source = e.get("source")
    model = e.get("model")
    return _Estimate(
        model=model if isinstance(model, str) else "",
        dtype=dtype,
        total=byte_count(e, "total_bytes", where),
        weights=total(lambda layer: layer.weights, "weight_bytes"),
        kv=total(lambda layer: layer.kv, "kv_cache_bytes"),
        activations=total(lambda layer: layer.activations, "activations_bytes"),
        exact=e.get("exact") is True,
        source=source if isinstance(source, str) else "analytic",
        layers=tuple(layers),
        notes=strings(e.get("notes")),
    )


# --- bars, columns, rows ----------------------------------------------------------------


def _stacked(label: str, weights: Number, kv: Number, activations: Number) -> Bar:
    return draw.bar(label, ("weights", weights), ("kv", kv), ("activations", activations))


_ESTIMATE_COLUMNS: Columns = (
    ("name", "Layer", "text"),
    ("kind", "Kind", "text"),
    ("params", "Params", "count"),
    ("weights", "Weights", "bytes"),
    ("kv", "KV cache", "bytes"),
    ("activations", "Prefill act.", "bytes"),
    ("total", "Total", "bytes"),
)
_MEASURED_COLUMNS: Columns = (
    ("measured", "Measured weights", "bytes"),
    ("measuredKv", "Measured KV", "bytes"),
    ("measuredActivations", "Largest output", "bytes"),
)
_COMPRESS_COLUMNS: Columns = (
    ("name", "Layer", "text"),
    ("scheme", "Scheme", "text"),
    ("before", "Before", "bytes"),
    ("after", "After", "bytes"),
    ("saved", "Saved", "bytes"),
    ("relError", "Rel. error", "percent"),
)


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


def profile_view(report: Mapping[str, Any]) -> MemoryView:
    estimate = _parse_estimate(field(report, "estimate", "report"), "report.estimate")
    totals = [_stacked(estimate.label, estimate.weights, estimate.kv, estimate.activations)]
    figures = [Figure("Estimated total", draw.size(estimate.total))]
    measured_by_name: dict[str, _MeasuredLayer] = {}
    if (raw_measured := report.get("measured")) is not None:
        measured = record(raw_measured, "report.measured")
        for i, raw in enumerate(array(measured, "layers", "report.measured")):
            at = f"report.measured.layers[{i}]"
            entry = record(raw, at)
            measured_by_name[string(entry, "name", at)] = _MeasuredLayer(
                weights=byte_count(entry, "bytes", at),
                kv=optional_number(entry, "kv_cache_bytes", at),
                activations=optional_number(entry, "activation_bytes", at),
            )
        weights = byte_count(measured, "weights_bytes", "report.measured")
        peak = byte_count(measured, "peak_bytes", "report.measured")
        totals += [
            draw.bar("Measured weights", ("measured", weights)),
            draw.bar("Measured peak", ("measured", peak)),
        ]
        figures += [
            Figure("Measured weights", draw.size(weights)),
            Figure("Measured peak", draw.size(peak)),
        ]
        if isinstance(device := measured.get("device"), str):
            figures.append(Figure("Device", device))
        speed = optional_number(measured, "decode_tokens_per_s", "report.measured")
        if speed is not None:
            figures.append(Figure("Decode speed", f"{speed:.1f} tokens/s (without profiler hooks)"))
    has_measured = bool(measured_by_name)
    layers = []
    for layer in estimate.layers:
        bars = [_stacked("estimate", layer.weights, layer.kv, layer.activations)]
        if (m := measured_by_name.get(layer.name)) is not None:
            bars.append(
                draw.bar(
                    "measured",
                    ("measured", m.weights),
                    ("kv", m.kv or 0),
                    ("output", m.activations or 0),
                )
            )
        layers.append(LayerGroup(layer.name, tuple(bars)))
    values = _estimate_rows(estimate)
    spec = _ESTIMATE_COLUMNS
    if has_measured:
        spec += _MEASURED_COLUMNS
        for row, layer in zip(values, estimate.layers, strict=True):
            m = measured_by_name.get(layer.name)
            row["measured"] = m.weights if m else None
            row["measuredKv"] = m.kv if m else None
            row["measuredActivations"] = m.activations if m else None
    return draw.view(
        title=f"Profile · {string(report, 'model', 'report')}",
        subtitle="measured next to the static estimate"
        if has_measured
        else "estimate only: nothing measured",
        figures=figures,
        totals=totals,
        layers=layers,
        spec=spec,
        values=values,
        notes=(*strings(report.get("notes")), *estimate.notes),
    )


def estimate_view(report: Mapping[str, Any]) -> MemoryView:
    estimates = [
        _parse_estimate(e, f"report.estimates[{i}]")
        for i, e in enumerate(array(report, "estimates", "report"))
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
    return draw.view(
        title=f"Estimate · {string(report, 'model', 'report')}",
        subtitle=f"per layer of {first.model} at {first.dtype}"
        if several
        else f"per layer at {first.dtype}",
        figures=tuple(
            Figure(f"{e.model} serving" if several else f"Total {e.dtype}", draw.size(e.total))
            for e in estimates
        ),
        totals=totals,
        layers=layers,
        spec=_ESTIMATE_COLUMNS,
        values=_estimate_rows(first),
        notes=(*strings(report.get("notes")), *first.notes),
    )


@dataclass(frozen=True)
class _CompressLayer:
    name: str
    scheme: str
    before: Number
    after: Number
    rel_error: Number | None


def compress_view(report: Mapping[str, Any]) -> MemoryView:
    layers = []
    for i, raw in enumerate(array(report, "layers", "report")):
        at = f"report.layers[{i}]"
        layer = record(raw, at)
        scheme = layer.get("scheme")
        layers.append(
            _CompressLayer(
                name=string(layer, "name", at),
                scheme=scheme if isinstance(scheme, str) else "",
                before=byte_count(layer, "bytes_before", at),
                after=byte_count(layer, "bytes_after", at),
                rel_error=optional_number(layer, "rel_error", at),
            )
        )
    before = sum(layer.before for layer in layers)
    after = sum(layer.after for layer in layers)
    saved = (
        f"{draw.size(before - after)} ({format_percent(1 - after / before)})" if before > 0 else "—"
    )

    def pair(a: str, b: str) -> str:
        x = optional_number(report, a, "report")
        y = optional_number(report, b, "report")
        return "not measured" if x is None or y is None else f"{x:.2f} → {y:.2f}"

    # the engine's report counts the compressed layers, and the whole model apart
    whole_before = optional_number(report, "weight_bytes_before", "report")
    whole_after = optional_number(report, "weight_bytes_after", "report")
    counted = f"{len(layers)} compressed layers"
    if whole_before is not None and whole_after is not None and whole_before > 0:
        sizes = [
            Figure("Model weights before", draw.size(whole_before)),
            Figure("Model weights after", draw.size(whole_after)),
            Figure(
                "Saved",
                f"{draw.size(whole_before - whole_after)} "
                f"({format_percent(1 - whole_after / whole_before)})",
            ),
            Figure(f"The {counted}", f"{draw.size(before)} → {draw.size(after)}"),
        ]
    else:
        sizes = [
            Figure(f"Before ({counted})", draw.size(before)),
            Figure(f"After ({counted})", draw.size(after)),
            Figure("Saved", saved),
        ]
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
    totals = [draw.bar("Before", ("before", before)), draw.bar("After", ("after", after))]
    groups = [
        LayerGroup(
            layer.name,
            (
                draw.bar("before", ("before", layer.before)),
                draw.bar("after", ("after", layer.after)),
            ),
        )
        for layer in layers
    ]
    values: list[dict[str, CellValue]] = [
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
    return draw.view(
        title=f"Compress · {string(report, 'model', 'report')}",
        subtitle=f"{scheme or 'compression plan'} · {quality}",
        figures=figures,
        totals=totals,
        layers=groups,
        spec=_COMPRESS_COLUMNS,
        values=values,
        notes=(*fallback_notes, *strings(report.get("notes"))),
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
