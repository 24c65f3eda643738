"""Hover: the per-block memory table of a model load (analytic at once; the worker's
exact or measured figures once it has them), the per-submodule table of a call that builds
a module class of the file, a training site's per-block training table, or a layer's
parameter count."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lsprotocol import types

from memlens.lsp_server.analysis import ModelBuild, ModelLoad, Position
from memlens.lsp_server.features.labels import layer_label, serving_label
from memlens.lsp_server.features.training_hover import training_hover
from memlens.profiler.estimate import MemoryEstimate, estimate_from_json
from memlens.profiler.layer_groups import group_layers
from memlens.units import format_bytes, format_count

if TYPE_CHECKING:
    from memlens.lsp_server.server import MemlensServer


def _escape(text: str) -> str:
    return "".join("\\" + c if c in "\\`*_[]<>|" else c for c in text)


def _measured_layers(measured: dict[str, Any]) -> dict[str, dict[str, Any]]:
    layers = measured.get("layers")
    if not isinstance(layers, list):
        return {}
    return {m["name"]: m for m in layers if isinstance(m, dict) and isinstance(m.get("name"), str)}


def _measured_cells(names: tuple[str, ...], by_name: dict[str, dict[str, Any]]) -> str:
    """Measured weights and KV (summed over the group) and the largest output (its max)."""
    found = [by_name[n] for n in names if n in by_name]
    if not found:
        return "— | — | — |"
    weights = sum(int(m.get("bytes") or 0) for m in found)
    kv = sum(int(m.get("kv_cache_bytes") or 0) for m in found)
    output = max(int(m.get("activation_bytes") or 0) for m in found)
    return f"{format_bytes(weights)} | {format_bytes(kv)} | {format_bytes(output)} |"


def load_markdown(estimate: MemoryEstimate, budget: int, report: dict[str, Any] | None) -> str:
    """The hover text for one model load: the per-block table (with the measured columns
    once a Profile measured this model), the serving total against the budget."""
    measured = report.get("measured") if report else None
    by_name = _measured_layers(measured) if isinstance(measured, dict) else {}
    source = (
        f"measured on {measured.get('device', '?')}; estimate {estimate.source}"
        if isinstance(measured, dict)
        else estimate.source
    )
    lines = [
        f"**{_escape(estimate.model)}** · {_escape(estimate.family)} · "
        f"{format_count(estimate.params)} params · {estimate.dtype} ({_escape(source)})",
        "",
    ]
    if by_name:
        lines += [
            "| block | params | weights | KV/token | measured weights | measured KV "
            "| largest output |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
    else:
        lines += ["| block | params | weights | KV/token |", "|---|---:|---:|---:|"]
    for group in group_layers(estimate.layers):
        layer = group.layer
        name = group.label + (f" ×{group.count}" if group.count > 1 else "")
        tied = f" (tied to {layer.tied_to})" if layer.tied_to else ""
        row = (
            f"| {_escape(name + tied)} | {format_count(layer.params * group.count)} | "
            f"{format_bytes(layer.bytes_by_dtype[estimate.dtype] * group.count)} | "
            f"{format_bytes(layer.kv_bytes_per_token * group.count)} |"
        )
        lines.append(row + (f" {_measured_cells(group.names, by_name)}" if by_name else ""))
    fits = "fits" if estimate.total_bytes <= budget else "does **not** fit"
    serving = serving_label(estimate)
    lines += [
        "",
        f"{serving[:1].upper()}{serving[1:]}: weights {format_bytes(estimate.weight_bytes)}"
        f" + KV cache {format_bytes(estimate.kv_cache_bytes)} ({estimate.context} tokens × "
        f"batch {estimate.batch}) + prefill activations "
        f"{format_bytes(estimate.activations_bytes)}, which {fits} the "
        f"{format_bytes(budget)} budget.",
    ]
    if isinstance(measured, dict):
        speed = measured.get("decode_tokens_per_s")
        lines.append(
            f"Measured: weights {format_bytes(measured['weights_bytes'])}, peak "
            f"{format_bytes(measured['peak_bytes'])} for {measured['prompt_tokens']}"
            f"+{measured['new_tokens']} tokens"
            + (f", decode {speed:.1f} tokens/s." if isinstance(speed, int | float) else ".")
        )
    lines += [f"> {_escape(note)}" for note in estimate.notes]
    return "\n".join(lines)


def build_markdown(build: ModelBuild) -> str:
    """The hover text for a call that builds a module: parameters per direct submodule."""
    size = build.size
    lines = [
        f"**{_escape(build.module)}** · {format_count(size.params)} params · "
        f"{format_bytes(size.bytes)} {size.dtype} (from the source)",
        "",
        "| submodule | params |",
        "|---|---:|",
        *(f"| {_escape(name)} | {format_count(count)} |" for name, count in size.parts),
    ]
    if size.unknown:
        lines += ["", "Not counted: " + ", ".join(f"`{name}`" for name in size.unknown)]
    return "\n".join(lines)


def _load_at(ls: MemlensServer, uri: str, position: Position) -> ModelLoad | None:
    return next((ld for ld in ls.analysis(uri).loads if ld.span.contains(position)), None)


def register(server: MemlensServer) -> None:
    """``textDocument/hover``."""

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: MemlensServer, params: types.HoverParams) -> types.Hover | None:
        uri = params.text_document.uri
        position = ls.from_lsp(uri, params.position)
        if (load := _load_at(ls, uri, position)) is not None:
            result = ls.load_estimate(uri, load)
            exact = ls.reports.get(("estimate", load.model_ref or ""))
            estimate = result.estimate
            if exact and exact.get("estimates") and (estimate is None or not estimate.exact):
                # the worker's meta-device figures replace an approximate or missing one
                estimate = estimate_from_json(exact["estimates"][0])
            if estimate is None:
                text = f"memlens: no estimate: {_escape(result.error or 'unknown model')}"
            else:
                report = ls.reports.get(("profile", estimate.model))
                text = load_markdown(estimate, ls.settings.budget_bytes, report)
            return types.Hover(
                contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text),
                range=ls.to_lsp_range(uri, load.span),
            )
        if (training := training_hover(ls, uri, position)) is not None:
            return types.Hover(
                contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=training[0]),
                range=ls.to_lsp_range(uri, training[1]),
            )
        for build in ls.analysis(uri).builds:
            if build.span.contains(position):
                return types.Hover(
                    contents=types.MarkupContent(
                        kind=types.MarkupKind.Markdown, value=build_markdown(build)
                    ),
                    range=ls.to_lsp_range(uri, build.span),
                )
        for cls in ls.analysis(uri).classes:
            for layer in cls.layers:
                if layer.span.contains(position):
                    label = layer_label(layer) or "parameters not known statically"
                    return types.Hover(
                        contents=types.MarkupContent(
                            kind=types.MarkupKind.Markdown,
                            value=f"**nn.{layer.layer}** in `{cls.name}`: {_escape(label)}",
                        ),
                        range=ls.to_lsp_range(uri, layer.span),
                    )
        return None
