"""Lifecycle and document sync: settings from the client, analysis on open/change."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from memlens.lsp_server.settings import Settings

if TYPE_CHECKING:
    from memlens.lsp_server.server import MemlensServer


def _memlens_section(settings: Any) -> Any:
    if isinstance(settings, dict) and isinstance(settings.get("memlens"), dict):
        return settings["memlens"]
    return settings


def register(server: MemlensServer) -> None:
    """Handlers for initialize, configuration changes and open/change/close."""

    @server.feature(types.INITIALIZE)
    def initialize(ls: MemlensServer, params: types.InitializeParams) -> None:
        ls.settings = Settings.from_client(_memlens_section(params.initialization_options))
        ls.estimator.workspace_root = ls.workspace_root

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def configuration_changed(
        ls: MemlensServer, params: types.DidChangeConfigurationParams
    ) -> None:
        changed = Settings.from_client(_memlens_section(params.settings))
        # Trust comes from the editor at start-up only: a settings change cannot grant it.
        ls.settings = replace(changed, trusted=ls.settings.trusted and changed.trusted)
        ls.refresh_views()
        await ls.configure_tracing()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: MemlensServer, params: types.DidOpenTextDocumentParams) -> None:
        if not ls.client_pulls_diagnostics:
            ls.schedule_diagnostics(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: MemlensServer, params: types.DidChangeTextDocumentParams) -> None:
        if not ls.client_pulls_diagnostics:
            ls.schedule_diagnostics(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: MemlensServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.forget(params.text_document.uri)
        if not ls.client_pulls_diagnostics:
            ls.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[])
            )

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: MemlensServer, params: None) -> None:
        await ls.worker.stop()
        await ls.traces.stop()
