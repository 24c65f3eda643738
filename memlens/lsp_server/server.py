"""``MemlensServer``: the pygls language server and the state every feature shares.

The server knows no feature: each feature's ``register(server)`` adds its handlers and
fills the server's hook lists (diagnostics providers, what runs when traces change)."""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.uris import to_fs_path

from memlens import __version__
from memlens.lsp_server.analysis import (
    Analysis,
    Estimator,
    LoadEstimate,
    ModelLoad,
    ParseCache,
    Position,
    Span,
    analyze,
    split_lines,
    workspace_loader,
)
from memlens.lsp_server.gc_pauses import GcPauses
from memlens.lsp_server.gc_policy import GcPolicy
from memlens.lsp_server.settings import Settings
from memlens.lsp_server.traces import TraceWatch
from memlens.lsp_server.version_results import DocumentResults, VersionResults
from memlens.lsp_server.worker_client import WorkerClient

log = logging.getLogger(__name__)
DIAGNOSTICS_DEBOUNCE_S = 0.05

DiagnosticsProvider = Callable[["MemlensServer", str], list[types.Diagnostic]]
"""Diagnostics of one kind for a document (by URI), from its current version."""
TracesHook = Callable[["MemlensServer"], None]
"""Called after new spans or memory samples reached the trace store."""


@dataclass(frozen=True)
class TraceViewRequest:
    """What the client last asked ``memlens.traces`` for."""

    trace_id: str | None
    """The trace to show; None for the overview (services and recent traces)."""


class MemlensProtocol(LanguageServerProtocol):
    """Forwards ``$/cancelRequest`` to running commands.

    pygls runs ``workspace/executeCommand`` handlers as tasks of their own, and its cancel
    only cancels the request's result; this also cancels the command's task, which in turn
    cancels its worker request.
    """

    def _handle_request(self, msg_id: Any, method_name: str, params: Any) -> None:
        # pygls hands command handlers their arguments only: keep the request's
        # workDoneToken so the command reports progress where the client shows it
        token = getattr(params, "work_done_token", None)
        server = self._server
        command = method_name == types.WORKSPACE_EXECUTE_COMMAND
        if command and token is not None and isinstance(server, MemlensServer):
            server.client_progress_tokens[msg_id] = token
        super()._handle_request(msg_id, method_name, params)

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        server = self._server
        if isinstance(server, MemlensServer) and (task := server.command_tasks.get(msg_id)):
            task.cancel()
        super()._handle_cancel_notification(msg_id)

    def cancel_request(self, msg_id: Any) -> None:
        """Cancel a running request as if the client had sent ``$/cancelRequest``: its
        task stops and the client gets the cancelled response."""
        self._handle_cancel_notification(msg_id)


class MemlensServer(LanguageServer):
    """Holds settings, per-document analyses, the estimator, the worker client, the trace
    store's watch, and the hooks the features registered."""

    def __init__(self) -> None:
        super().__init__("memlens", __version__, protocol_cls=MemlensProtocol)
        self.protocol: MemlensProtocol
        self.settings = Settings()
        self.estimator = Estimator()
        self.worker = WorkerClient(on_crash=self.report_worker_crash)
        self.reports: dict[tuple[str, str], dict[str, Any]] = {}
        """Latest worker results by (command kind, model), shown in hovers."""
        self._analyses: dict[str, Analysis] = {}
        self._lines: dict[str, tuple[int | None, list[str]]] = {}
        self._dirs: dict[str, Path | None] = {}
        self.parse_cache = ParseCache()
        """Open documents' parsed chunks, bounded; a closed document releases its own."""
        self.results = VersionResults()
        """Answers computed once per document version."""
        self.gc_pauses = GcPauses()
        """Timed once :meth:`GcPauses.install` is called (``python -m memlens.lsp_server``)."""
        self.gc_policy = GcPolicy()
        """Pauses the collector during analyses once installed (``python -m
        memlens.lsp_server``)."""
        self._debounce: dict[str, asyncio.TimerHandle] = {}
        self.progress_requests: dict[str, Any] = {}
        """Running commands' JSON-RPC request ids by their work-done progress token."""
        self.command_tasks: dict[Any, asyncio.Task[Any]] = {}
        """Running commands by their JSON-RPC request id."""
        self.client_progress_tokens: dict[Any, int | str] = {}
        """Request id → the workDoneToken a client sent with ``workspace/executeCommand``."""
        self.traces = TraceWatch(on_change=self.traces_changed, on_error=self.show_warning)
        self.trace_view: TraceViewRequest | None = None
        """The client's open trace view; None until it asks ``memlens.traces``."""
        self.diagnostics_providers: list[DiagnosticsProvider] = []
        """Filled by the features at registration, run in that order."""
        self.on_traces_changed: list[TracesHook] = []
        """Filled by the features at registration (see :meth:`traces_changed`)."""
        self._background: set[asyncio.Task[None]] = set()
        """Tasks nobody awaits (the loop holds tasks weakly: kept here until done)."""

    # -- documents ---------------------------------------------------------------------
    def analysis(self, uri: str) -> Analysis:
        """The analysis of the document's current version (computed at most once)."""
        document = self.workspace.get_text_document(uri)
        cached = self._analyses.get(uri)
        if cached is not None and cached.version == document.version:
            return cached
        path = to_fs_path(uri)
        root = self.workspace.root_path
        loader = workspace_loader(Path(path), Path(root) if root else None) if path else None
        with self.gc_policy.analysis():
            analysis = analyze(document.source, document.version, loader, self.parse_cache, uri)
        self._analyses[uri] = analysis
        return analysis

    def version_results(self, uri: str) -> DocumentResults:
        """The answers computed for the document's current version."""
        return self.results.of(uri, self.workspace.get_text_document(uri).version)

    def forget(self, uri: str) -> None:
        """Drop a closed document's state."""
        self._analyses.pop(uri, None)
        self._lines.pop(uri, None)
        self._dirs.pop(uri, None)
        self.parse_cache.release(uri)
        self.results.release(uri)
        if (handle := self._debounce.pop(uri, None)) is not None:
            handle.cancel()

    def held_documents(self) -> set[str]:
        """The documents the server holds state for (analyses, lines, parsed chunks,
        per-version answers): the open ones at most."""
        return (
            set(self._analyses)
            | set(self._lines)
            | set(self._dirs)
            | self.parse_cache.documents()
            | self.results.documents()
        )

    def document_dir(self, uri: str) -> Path | None:
        """The folder of a ``file:`` document, for relative model paths."""
        if uri not in self._dirs:
            path = to_fs_path(uri)
            self._dirs[uri] = Path(path).parent if path else None
        return self._dirs[uri]

    def load_estimate(self, uri: str, load: ModelLoad, dtype: str | None = None) -> LoadEstimate:
        """The analytic estimate of one load, optionally at another dtype."""
        return self.estimator.estimate_load(load, self.document_dir(uri), dtype)

    def target_load(self, uri: str, target: str, before: Position) -> ModelLoad | None:
        """The last load assigned to ``target`` before ``before``."""
        by_target = self.version_results(uri).get("loads by target", lambda: _by_target(self, uri))
        loads = by_target.get(target, [])
        index = bisect.bisect_left([ld.span.start for ld in loads], before)
        return loads[index - 1] if index else None

    # -- positions ---------------------------------------------------------------------
    def lines(self, uri: str) -> list[str]:
        """The document's lines, split once per version (pygls splits on every access)."""
        document = self.workspace.get_text_document(uri)
        cached = self._lines.get(uri)
        if cached is None or cached[0] != document.version:
            cached = (document.version, split_lines(document.source))
            self._lines[uri] = cached
        return cached[1]

    def to_lsp(self, uri: str, position: Position) -> types.Position:
        """A code-point position → the client's position encoding."""
        lines = self.lines(uri)
        prefix = (lines[position.line] if position.line < len(lines) else "")[: position.col]
        if prefix.isascii():  # one unit per character in every encoding
            return types.Position(position.line, len(prefix))
        codec = self.workspace.position_codec
        return types.Position(position.line, codec.client_num_units(prefix))

    def to_lsp_range(self, uri: str, span: Span) -> types.Range:
        """A span → an LSP range in the client's encoding."""
        return types.Range(self.to_lsp(uri, span.start), self.to_lsp(uri, span.end))

    def from_lsp(self, uri: str, position: types.Position) -> Position:
        """A client position → a code-point position."""
        converted = self.workspace.position_codec.position_from_client_units(
            self.lines(uri), position
        )
        return Position(converted.line, converted.character)

    # -- diagnostics scheduling ----------------------------------------------------------
    def schedule_diagnostics(self, uri: str) -> None:
        """Publish diagnostics once typing pauses; stale versions are dropped."""
        if (handle := self._debounce.pop(uri, None)) is not None:
            handle.cancel()
        loop = asyncio.get_running_loop()
        self._debounce[uri] = loop.call_later(DIAGNOSTICS_DEBOUNCE_S, self._publish, uri)

    def diagnostics(self, uri: str) -> list[types.Diagnostic]:
        """All memlens diagnostics of a document's current version (computed once per
        version)."""
        return self.version_results(uri).get(
            "diagnostics",
            lambda: [
                found for provider in self.diagnostics_providers for found in provider(self, uri)
            ],
        )

    def _publish(self, uri: str) -> None:
        self._debounce.pop(uri, None)
        if uri not in self.workspace.text_documents:
            return
        document = self.workspace.get_text_document(uri)
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(
                uri=uri, version=document.version, diagnostics=self.diagnostics(uri)
            )
        )

    @property
    def client_pulls_diagnostics(self) -> bool:
        """Whether the client asks for diagnostics (LSP 3.17 pull) instead of receiving them."""
        text = self.client_capabilities.text_document
        return bool(text and text.diagnostic)

    def refresh_views(self) -> None:
        """After a settings change: ask the client to re-request hints, lenses and
        diagnostics (where it supports refresh), or push diagnostics again. The answers
        computed per document version are recomputed."""
        self.results.invalidate()
        workspace = self.client_capabilities.workspace
        if workspace and workspace.inlay_hint and workspace.inlay_hint.refresh_support:
            self.workspace_inlay_hint_refresh(None)
        if workspace and workspace.code_lens and workspace.code_lens.refresh_support:
            self.workspace_code_lens_refresh(None)
        if self.client_pulls_diagnostics:
            if workspace and workspace.diagnostics and workspace.diagnostics.refresh_support:
                self.workspace_diagnostic_refresh(None)
        else:
            for uri in list(self.workspace.text_documents):
                self.schedule_diagnostics(uri)

    # -- tracing -------------------------------------------------------------------------
    @property
    def workspace_root(self) -> Path | None:
        """The workspace folder the client opened, if a ``file:`` one."""
        root = self.workspace.root_uri
        path = to_fs_path(root) if root else None
        return Path(path) if path else None

    async def configure_tracing(self) -> None:
        """Start or stop the collector and store polling to follow the settings."""
        settings = self.settings
        await self.traces.configure(
            settings.tracing_enabled and settings.trusted,
            self.workspace_root,
            settings.collector_port,
        )

    def traces_changed(self) -> None:
        """New spans or memory samples: refresh lenses and diagnostics, then run the
        features' hooks (the trace view's refresh)."""
        self.refresh_views()
        for hook in self.on_traces_changed:
            hook(self)

    def run_in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` on the event loop without awaiting it; it must handle its errors."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- user messages -----------------------------------------------------------------
    def show(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        """``window/showMessage``."""
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def show_warning(self, message: str) -> None:
        """A warning for the user, logged too."""
        log.warning("%s", message)
        self.show(message, types.MessageType.Warning)

    def report_worker_crash(self, reason: str) -> None:
        """Tell the user the worker died; it restarts on the next request."""
        self.show_warning(reason)


def _by_target(ls: MemlensServer, uri: str) -> dict[str, list[ModelLoad]]:
    """The document's loads by the name they are assigned to, in source order."""
    by_target: dict[str, list[ModelLoad]] = {}
    for load in ls.analysis(uri).loads:
        if load.target is not None:
            by_target.setdefault(load.target, []).append(load)
    return by_target
