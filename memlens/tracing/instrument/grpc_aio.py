"""``grpc.aio`` client calls: their spans start in a task of grpc's own, so each call
remembers the user line that made it (:func:`.code_locations.remembering_call_site`)."""

from __future__ import annotations

from types import ModuleType

from memlens.tracing.instrument.code_locations import remembering_call_site

__all__ = ["patch_grpc_aio_calls"]


def patch_grpc_aio_calls(channel: ModuleType) -> None:
    """Remember the caller of each ``grpc.aio`` call: its client span starts in a task that
    grpc creates, where no user frame is on the stack."""
    for name in (
        "UnaryUnaryMultiCallable",
        "UnaryStreamMultiCallable",
        "StreamUnaryMultiCallable",
        "StreamStreamMultiCallable",
    ):
        callable_class = getattr(channel, name, None)
        if callable_class is not None and not getattr(callable_class.__call__, "_memlens", False):
            callable_class.__call__ = remembering_call_site(callable_class.__call__)
