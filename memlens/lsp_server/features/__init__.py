"""One module per LSP feature; each exposes ``register(server)``, which adds its handlers
and fills the server's hooks (``labels`` is the short texts several features share)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from memlens.lsp_server.features import (
    build_diagnostics,
    code_actions,
    code_lens,
    commands,
    compress_options,
    diagnostics,
    document_view,
    documents,
    hover,
    inlay_hints,
    run_memory,
    summary,
    traces,
    training_diagnostics,
)

if TYPE_CHECKING:
    from memlens.lsp_server.server import MemlensServer

FEATURES = (
    documents,
    inlay_hints,
    hover,
    diagnostics,
    build_diagnostics,  # after diagnostics: a document's loads' diagnostics come first
    training_diagnostics,
    run_memory,
    code_actions,
    code_lens,
    commands,
    compress_options,
    summary,
    document_view,
    traces,
)


def register_all(server: MemlensServer) -> None:
    """Register every feature's handlers on ``server``."""
    for feature in FEATURES:
        feature.register(server)
