"""Quick fixes that set or replace the dtype of a load or of a call that builds a module
class of the file (adding ``import torch`` when needed), or load and compress a model in
one step with memlens's ``load_model``; and a training site's fixes (``training_fixes``)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from lsprotocol import types

from memlens.errors import MemlensError
from memlens.lsp_server.analysis import ModelBuild, ModelLoad, Position, Span
from memlens.lsp_server.features.compress_options import int4_coverage
from memlens.lsp_server.features.labels import weights_label
from memlens.lsp_server.features.training_fixes import training_actions
from memlens.profiler.architectures import describe
from memlens.profiler.tensors import DEFAULT_GROUP_SIZE, VALID_GROUP_SIZES, StorageDtype
from memlens.units import format_bytes, format_count

if TYPE_CHECKING:
    from memlens.lsp_server.server import MemlensServer

FIX_DTYPES = (StorageDtype.BF16, StorageDtype.FP16)
"""The dtypes quick fixes offer, the preferred one first."""


def _torch_dtype(
    ls: MemlensServer, uri: str, dtype: StorageDtype
) -> tuple[str, list[types.TextEdit]]:
    """``torch.bfloat16`` as the document spells torch (an alias like ``T`` is used as is),
    with the edit that adds ``import torch`` when no name is bound to torch."""
    analysis = ls.analysis(uri)
    if analysis.torch_name is not None:
        return f"{analysis.torch_name}.{dtype.torch_name}", []
    at = ls.to_lsp(uri, Position(analysis.import_line, 0))
    return f"torch.{dtype.torch_name}", [
        types.TextEdit(range=types.Range(at, at), new_text="import torch\n")
    ]


def dtype_edits(
    ls: MemlensServer, uri: str, load: ModelLoad, dtype: StorageDtype
) -> list[types.TextEdit]:
    """Edits that make ``load`` use ``dtype``: replace its dtype argument or add one, and
    ``import torch`` when no name is bound to torch."""
    expression, edits = _torch_dtype(ls, uri, dtype)
    if load.dtype_span is not None:
        edits.append(
            types.TextEdit(range=ls.to_lsp_range(uri, load.dtype_span), new_text=expression)
        )
    elif load.insert_at is not None:
        at = ls.to_lsp(uri, load.insert_at)
        new_text = f"{load.insert_prefix}dtype={expression}"
        edits.append(types.TextEdit(range=types.Range(at, at), new_text=new_text))
    return edits


def build_dtype_edits(
    ls: MemlensServer, uri: str, build: ModelBuild, dtype: StorageDtype
) -> list[types.TextEdit]:
    """Edits that cast what ``build`` makes to ``dtype``: ``.to(torch.bfloat16)`` chained
    on the call (in place of a chained ``.half()``, or the dtype a chained ``.to(...)``
    names), and ``import torch`` when no name is bound to torch."""
    expression, edits = _torch_dtype(ls, uri, dtype)
    new_text = build.cast.template.format(dtype=expression)
    return [*edits, types.TextEdit(range=ls.to_lsp_range(uri, build.cast.span), new_text=new_text)]


ENGINE_SCHEMES = ("int8", "int4")
ENGINE_LOADER = "memlens.engine.load_model"
_ENGINE_DTYPES = (StorageDtype.BF16, StorageDtype.FP16)
"""The dtypes the rewrite keeps from the load; any other (fp32, ``auto``, none) becomes
bf16, the dtype the estimate of a compressed load assumes for what stays uncompressed."""


def int4_group(ls: MemlensServer, uri: str, load: ModelLoad) -> int:
    """The largest INT4 group size whose every matrix's width it divides (128, 64, 32);
    the default when none does (those matrices fall back) or the model is not known."""
    if load.model_ref is None:
        return DEFAULT_GROUP_SIZE
    try:
        resolved = ls.estimator.resolve(load.model_ref, ls.document_dir(uri))
        spec = describe(resolved.config, source=resolved.model)
    except MemlensError:
        return DEFAULT_GROUP_SIZE
    fitting = [g for g in VALID_GROUP_SIZES if not int4_coverage(spec, g)[2]]
    return max(fitting, default=DEFAULT_GROUP_SIZE)


def _engine_import(ls: MemlensServer, uri: str, names: tuple[str, ...]) -> types.TextEdit:
    """Add ``names`` to the file's ``from memlens.engine import …``, or a new one."""
    analysis = ls.analysis(uri)
    if analysis.engine_import is None:
        at = ls.to_lsp(uri, Position(analysis.import_line, 0))
        return types.TextEdit(
            range=types.Range(at, at), new_text=f"from memlens.engine import {', '.join(names)}\n"
        )
    span, written = analysis.engine_import
    merged = sorted({*written, *names}, key=str.lower)
    return types.TextEdit(
        range=ls.to_lsp_range(uri, span), new_text=f"from memlens.engine import {', '.join(merged)}"
    )


def engine_load(ls: MemlensServer, uri: str, load: ModelLoad, scheme: str) -> ModelLoad:
    """What the analysis finds once :func:`engine_edits` rewrote ``load``."""
    group = int4_group(ls, uri, load) if scheme == "int4" else None
    return replace(
        load,
        loader=ENGINE_LOADER,
        dtype=_engine_dtype(load).value,
        quantization=scheme,
        group_size=group,
    )


def _engine_dtype(load: ModelLoad) -> StorageDtype:
    return next((d for d in _ENGINE_DTYPES if d == load.dtype), StorageDtype.BF16)


def engine_edits(ls: MemlensServer, uri: str, load: ModelLoad, scheme: str) -> list[types.TextEdit]:
    """Rewrite ``load``'s call into memlens's one-step load-and-compress,
    ``load_model(ID, torch.bfloat16, weights=Int4WeightConfig(group_size=64)).model``,
    importing both from ``memlens.engine`` (and ``torch`` when no name is bound to it)."""
    assert load.model_ref is not None
    rewritten = engine_load(ls, uri, load, scheme)
    dtype, edits = _torch_dtype(ls, uri, _engine_dtype(load))
    config = (
        f"Int4WeightConfig(group_size={rewritten.group_size})"
        if scheme == "int4"
        else "Int8WeightConfig()"
    )
    ref = repr(load.model_ref) if '"' in load.model_ref else f'"{load.model_ref}"'
    call = f"load_model({ref}, {dtype}, weights={config}).model"
    return [
        *edits,
        _engine_import(ls, uri, (config.split("(")[0], "load_model")),
        types.TextEdit(range=ls.to_lsp_range(uri, load.span), new_text=call),
    ]


def _engine_actions(
    ls: MemlensServer, uri: str, load: ModelLoad, related: list[types.Diagnostic]
) -> list[types.CodeAction]:
    # Only a causal LM's from_pretrained of a static id with nothing but a dtype besides
    # it can be rewritten faithfully: load_model takes no quantization_config,
    # device_map, trust_remote_code, revision or **kwargs, builds no pipeline, and loads
    # a causal LM with its LM head (not a bare AutoModel, not another task's head).
    if (
        load.target is None
        or load.model_ref is None
        or not load.only_id_and_dtype
        or load.quantization is not None
        or not load.loader.removesuffix(".from_pretrained").endswith("ForCausalLM")
    ):
        return []
    actions = []
    for scheme in ENGINE_SCHEMES:
        rewritten = engine_load(ls, uri, load, scheme)
        estimate = ls.load_estimate(uri, rewritten).estimate
        size = f" ({weights_label(estimate.weight_bytes)})" if estimate else ""
        group = f" g{rewritten.group_size}" if rewritten.group_size else ""
        actions.append(
            types.CodeAction(
                title=(
                    f"memlens: load and compress the weights to {scheme.upper()}{group} "
                    f"in one step{size}"
                ),
                kind=types.CodeActionKind.QuickFix,
                diagnostics=related or None,
                edit=types.WorkspaceEdit(changes={uri: engine_edits(ls, uri, load, scheme)}),
            )
        )
    return actions


def _build_actions(
    ls: MemlensServer, uri: str, build: ModelBuild, related: list[types.Diagnostic]
) -> list[types.CodeAction]:
    actions = []
    for dtype in FIX_DTYPES:
        size = build.size_as(dtype)
        if size is None:
            continue
        floor = "≥ " if size.unknown else ""
        actions.append(
            types.CodeAction(
                title=(
                    f"memlens: cast the built {build.module} to torch.{dtype.torch_name} "
                    f"({floor}{format_count(size.params)} params · "
                    f"{floor}{format_bytes(size.bytes)})"
                ),
                kind=types.CodeActionKind.QuickFix,
                diagnostics=related or None,
                is_preferred=dtype == StorageDtype.BF16 and bool(related),
                edit=types.WorkspaceEdit(changes={uri: build_dtype_edits(ls, uri, build, dtype)}),
            )
        )
    return actions


def register(server: MemlensServer) -> None:
    """``textDocument/codeAction``."""

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
    )
    def code_actions(ls: MemlensServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        wanted = Span(ls.from_lsp(uri, params.range.start), ls.from_lsp(uri, params.range.end))
        ours = [d for d in params.context.diagnostics if d.source == "memlens"]
        actions: list[types.CodeAction] = []
        related = [d for d in ours if d.code in ("over-budget", "fp32-load")]
        actions.extend(training_actions(ls, uri, wanted, ours))
        for build in ls.analysis(uri).builds:
            if build.span.start <= wanted.end and wanted.start <= build.span.end:
                actions.extend(_build_actions(ls, uri, build, related))
        for load in ls.analysis(uri).loads:
            if not (load.span.start <= wanted.end and wanted.start <= load.span.end):
                continue
            actions.extend(_engine_actions(ls, uri, load, related))
            if load.quantization is not None or (load.double_star and load.dtype_span is None):
                continue  # **kwargs may already carry a dtype: adding one could clash
            for dtype in FIX_DTYPES:
                if load.dtype == dtype:
                    continue
                estimate = ls.load_estimate(uri, load, dtype).estimate
                size = f" (≈ {format_bytes(estimate.total_bytes)})" if estimate else ""
                actions.append(
                    types.CodeAction(
                        title=f"memlens: load in torch.{dtype.torch_name}{size}",
                        kind=types.CodeActionKind.QuickFix,
                        diagnostics=related or None,
                        is_preferred=dtype == StorageDtype.BF16 and bool(related),
                        edit=types.WorkspaceEdit(changes={uri: dtype_edits(ls, uri, load, dtype)}),
                    )
                )
        return actions
