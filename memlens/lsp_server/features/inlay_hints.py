"""Inlay hints: ``≈ 12.6 GiB bf16`` at model loads, dtype changes and config
constructors; ``45.1M params · 172.0 MiB fp32`` at layer constructors and at calls that
build a module class of the file (``GPT(GPTConfig(n_layer=24))``); the KV cache a
``generate(max_new_tokens=N)`` adds; at training sites, the step's peak, the trainable
parameters or the optimizer's states (``training_estimates``). Computed once per document
version, answered for the requested range."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from memlens.errors import MemlensError
from memlens.lsp_server.analysis import Analysis
from memlens.lsp_server.features.labels import Hint, build_label, layer_label, load_label
from memlens.lsp_server.features.training_estimates import training_hint_texts
from memlens.profiler.estimate import analytic_estimate
from memlens.profiler.tensors import StorageDtype
from memlens.units import format_bytes, format_count

if TYPE_CHECKING:
    from memlens.lsp_server.server import MemlensServer


def hint_texts(ls: MemlensServer, uri: str, analysis: Analysis) -> list[Hint]:
    """Every hint in the document."""
    hints: list[Hint] = []
    for load in analysis.loads:
        if estimate := ls.load_estimate(uri, load).estimate:
            hints.append(Hint(load.span.end, load_label(estimate)))
    for change in analysis.dtype_changes:
        changed = ls.target_load(uri, change.target, change.span.start)
        estimate = ls.load_estimate(uri, changed, change.dtype).estimate if changed else None
        if estimate is not None:
            hints.append(Hint(change.span.end, load_label(estimate)))
    batch = max(analysis.batch_sizes, default=1)
    per = f"× batch {batch}" if analysis.batch_sizes else "per sequence"
    for call in analysis.generates:
        source = ls.target_load(uri, call.target, call.span.start) if call.target else None
        if source is None or call.max_new_tokens is None:
            continue
        if (estimate := ls.load_estimate(uri, source).estimate) and estimate.kv_bytes_per_token:
            kv = estimate.kv_bytes_per_token * call.max_new_tokens * batch
            kv_label = f"KV +{format_bytes(kv)} for {call.max_new_tokens} new tokens {per}"
            hints.append(Hint(call.span.end, kv_label))
    for config in analysis.configs:
        if any(v is None for v in config.fields.values()):
            continue
        try:
            [estimate] = analytic_estimate(config.fields, config.config_class, [StorageDtype.FP32])
        except MemlensError:
            continue
        size = f"{format_count(estimate.params)} params · {format_bytes(estimate.weight_bytes)}"
        hints.append(Hint(config.span.end, f"{size} fp32"))
    for build in analysis.builds:
        if built := build_label(build.size):
            hints.append(Hint(build.span.end, built))
    for cls in analysis.classes:
        for layer in cls.layers:
            if layer_text := layer_label(layer):
                hints.append(Hint(layer.span.end, layer_text))
    return hints + training_hint_texts(ls, uri)


def register(server: MemlensServer) -> None:
    """``textDocument/inlayHint``."""

    @server.feature(types.TEXT_DOCUMENT_INLAY_HINT)
    def inlay_hints(ls: MemlensServer, params: types.InlayHintParams) -> list[types.InlayHint]:
        if not ls.settings.hints_enabled:
            return []
        uri = params.text_document.uri
        hints = ls.version_results(uri).get("inlay hints", lambda: _document_hints(ls, uri))
        start, end = params.range.start, params.range.end
        return [h for h in hints if start <= h.position <= end]


def _document_hints(ls: MemlensServer, uri: str) -> list[types.InlayHint]:
    """Every hint of the document's current version, in the client's positions."""
    return [
        types.InlayHint(
            position=ls.to_lsp(uri, hint.position),
            label=hint.label,
            kind=types.InlayHintKind.Type,
            tooltip=hint.tooltip,
            padding_left=True,
        )
        for hint in hint_texts(ls, uri, ls.analysis(uri))
    ]
