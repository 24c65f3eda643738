"""``workspace/executeCommand``: ``memlens.estimate``, ``memlens.profile``,
``memlens.compress`` run in the worker with work-done progress, can be cancelled, and send
the memory view built from their result to the client as a ``memlens/memoryReport``
notification; plus
``memlens.workerStatus`` and ``memlens.serverStatus`` (what the server holds: open
documents, the parse cache's size and bounds, the longest garbage-collector pause).

Arguments are ``[uri, line]`` (the model load on that line; for ``memlens.profile`` also a
Trainer or ``backward()`` line, which sends the worker ``{"model", "train": <TrainingConfig
JSON>}``), ``[uri, line, options]``
(``memlens.compress``'s ``{"weights": "int4:g64", "max_error": 0.02}``, as the Compress…
quick pick chose from ``memlens/compressOptions``) or ``[{"model": ID, ...}]``. A client
that sends a ``workDoneToken`` with the request gets the progress on that token (the
extension shows it as a cancellable notification); otherwise the server creates one.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import Any

from lsprotocol import types

from memlens.errors import MemlensError, UsageError
from memlens.lsp_server.analysis import Analysis, ModelLoad, TrainingSite
from memlens.lsp_server.server import MemlensServer  # pygls resolves command annotations
from memlens.profiler.tensors import StorageDtype

REPORT_NOTIFICATION = "memlens/memoryReport"
COMMAND_TIMEOUT_S = 600.0
_KINDS = {
    "memlens.estimate": "estimate",
    "memlens.profile": "profile",
    "memlens.compress": "compress",
}


def runnable(load: ModelLoad) -> bool:
    """Whether the worker commands can run this load (a static id, not bitsandbytes)."""
    return load.model_ref is not None and load.config is None and load.quantization is None


def _profilable(site: TrainingSite) -> bool:
    """A peak site (a Trainer, a ``backward()``) of a load the worker can run."""
    return (
        site.reports_peak
        and site.config is not None
        and site.load is not None
        and site.load.model_ref is not None
        and site.load.config is None
    )


def training_site_at(analysis: Analysis, line: int) -> TrainingSite | None:
    """The peak site on ``line`` the worker can profile."""
    return next(
        (s for s in analysis.training if _profilable(s) and s.span.start.line == line), None
    )


STALE_LINES = 3
"""How far a lens's line may lag its target: VS Code moves a lens with the text it sits on
but runs it with the line it was made for until it asks for lenses again."""


def _target(
    analysis: Analysis, line: int, command: str
) -> tuple[ModelLoad | None, TrainingSite | None]:
    """The load (or, for ``memlens.profile``, the training site) a command on ``line``
    means: the one on it, else the nearest within :data:`STALE_LINES`."""
    loads = [(ld.span.start.line, ld) for ld in analysis.loads if runnable(ld)]
    sites = [(s.span.start.line, s) for s in analysis.training if _profilable(s)]
    candidates: list[tuple[int, ModelLoad | TrainingSite]] = [
        *loads,
        *(sites if command == "memlens.profile" else []),
    ]
    near = [(abs(at - line), at, t) for at, t in candidates if abs(at - line) <= STALE_LINES]
    if not near:
        return None, None
    _, _, target = min(near, key=lambda item: (item[0], item[1]))
    return (target, None) if isinstance(target, ModelLoad) else (None, target)


def request_params(ls: MemlensServer, command: str, arguments: tuple[Any, ...]) -> dict[str, Any]:
    """Worker params from ``[uri, line]`` or ``[{"model": ...}]``; UsageError otherwise."""
    if len(arguments) == 1 and isinstance(arguments[0], dict) and "model" in arguments[0]:
        return dict(arguments[0])
    options: dict[str, Any] = {}
    if len(arguments) == 3 and command == "memlens.compress":
        options = _compress_options(arguments[2])
        arguments = arguments[:2]
    if len(arguments) == 2 and isinstance(arguments[0], str) and isinstance(arguments[1], int):
        uri, line = arguments
        if uri not in ls.workspace.text_documents:
            raise UsageError(f"{uri} is not open")
        load, site = _target(ls.analysis(uri), line, command)
        if site is not None:
            assert site.load is not None and site.config is not None
            folder = ls.document_dir(uri)
            return {
                "model": site.load.model_ref,
                "train": site.config.to_json(),
                "document_dir": str(folder) if folder else None,
            }
        if load is None:
            raise UsageError(f"no model load with a static id on line {line + 1}")
        estimate = ls.load_estimate(uri, load).estimate
        dtype = StorageDtype(estimate.dtype) if estimate else StorageDtype.BF16
        if command != "memlens.estimate":
            dtype = dtype.compute_dtype  # profile and compress start from the float model
        folder = ls.document_dir(uri)
        return {
            "model": load.model_ref,
            "dtypes": [dtype.value],
            "document_dir": str(folder) if folder else None,
            **options,
        }
    raise UsageError('arguments must be [uri, line] or [{"model": ID}]')


def _compress_options(value: Any) -> dict[str, Any]:
    """``{"weights": str, "max_error"?: number}`` checked for shape (the worker parses it)."""
    if not isinstance(value, dict) or not isinstance(value.get("weights"), str):
        raise UsageError('the third argument must be {"weights": "int8" | "int4:g64" | "auto"}')
    options: dict[str, Any] = {"weights": value["weights"]}
    max_error = value.get("max_error")
    if max_error is not None:
        if not isinstance(max_error, int | float) or isinstance(max_error, bool):
            raise UsageError("max_error must be a number (0.02 is 2%)")
        options["max_error"] = max_error
    return options


async def run_in_worker(
    ls: MemlensServer, command: str, arguments: tuple[Any, ...]
) -> dict[str, Any]:
    """Run one command in the worker with progress; notify and return its report."""
    try:
        if not ls.settings.trusted:
            raise UsageError("this workspace is not trusted: memlens runs no worker here")
        params = request_params(ls, command, arguments)
    except MemlensError as exc:
        ls.show(f"memlens: {exc}", types.MessageType.Error)
        raise
    request_id = ls.protocol.msg_id
    client_token = ls.client_progress_tokens.pop(request_id, None)
    token = str(client_token) if client_token is not None else str(uuid.uuid4())
    if (task := asyncio.current_task()) is not None:
        ls.command_tasks[request_id] = task
    title = f"memlens: {_KINDS[command]} {params['model']}"
    progress = ls.client_capabilities.window and ls.client_capabilities.window.work_done_progress
    if progress and client_token is None:
        await ls.work_done_progress.create_async(token)
    if progress:
        ls.work_done_progress.begin(
            token, types.WorkDoneProgressBegin(title=title, cancellable=True, percentage=0)
        )
        ls.progress_requests[token] = request_id

    def on_progress(update: dict[str, Any]) -> None:
        if progress:
            ls.work_done_progress.report(
                token,
                types.WorkDoneProgressReport(
                    message=update.get("message"), percentage=update.get("percentage")
                ),
            )

    outcome = "cancelled"
    try:
        report: dict[str, Any] = await ls.worker.request(
            command, params, on_progress, COMMAND_TIMEOUT_S
        )
        outcome = "done"
    except MemlensError as exc:
        outcome = "failed"
        ls.show(f"{title}: {exc}", types.MessageType.Error)
        raise
    finally:
        ls.command_tasks.pop(request_id, None)
        if progress:
            ls.progress_requests.pop(token, None)
            ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=outcome))
    kind = report.get("kind", _KINDS[command])
    for model in {params["model"], report.get("model", "")}:  # as written and as resolved
        ls.reports[(kind, model)] = report
    from memlens.lsp_server.memory_view import build_memory_view  # not needed to start

    view = build_memory_view(report, ls.settings.budget_bytes)
    ls.protocol.notify(REPORT_NOTIFICATION, view.to_json())
    return report


def _worker_command(name: str) -> Any:
    async def handler(ls: MemlensServer, *args: Any) -> dict[str, Any]:
        return await run_in_worker(ls, name, args)

    return handler


def register(server: MemlensServer) -> None:
    """The worker-backed commands and progress cancellation."""
    for name in _KINDS:
        server.command(name)(_worker_command(name))

    @server.command("memlens.workerStatus")
    def worker_status(ls: MemlensServer, *args: Any) -> dict[str, Any]:
        return {
            "pid": ls.worker.pid,
            "restarts": ls.worker.restarts,
            "trusted": ls.settings.trusted,
            "server_imports_torch": "torch" in sys.modules,
        }

    @server.command("memlens.serverStatus")
    def server_status(ls: MemlensServer, *args: Any) -> dict[str, Any]:
        cache = ls.parse_cache.size()
        return {
            "open_documents": len(ls.workspace.text_documents),
            "held_documents": len(ls.held_documents()),
            "parse_cache": {
                "entries": cache.entries,
                "source_bytes": cache.source_bytes,
                "documents": cache.documents,
                "max_entries": ls.parse_cache.max_entries,
                "max_source_bytes": ls.parse_cache.max_source_bytes,
            },
            "longest_gc_pause_ms": ls.gc_pauses.longest_s * 1000,
            "longest_gc_pause_generation": ls.gc_pauses.longest_generation,
            "gc_passes": ls.gc_pauses.passes,
        }

    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def cancel_progress(ls: MemlensServer, params: types.WorkDoneProgressCancelParams) -> None:
        if (request_id := ls.progress_requests.get(str(params.token))) is not None:
            ls.protocol.cancel_request(request_id)
