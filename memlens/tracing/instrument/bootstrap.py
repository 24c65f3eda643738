"""The OpenTelemetry setup of a process under ``memlens run``: :func:`bootstrap`."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from opentelemetry import trace
from opentelemetry.propagate import set_global_textmap
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from memlens.tracing.instrument.code_locations import CodeLocationSpanProcessor
from memlens.tracing.instrument.libraries import instrument_libraries
from memlens.tracing.memory import entry_point, interval_from_env, start_memory_metrics
from memlens.tracing.otlp_metrics import ENTRY_POINT
from memlens.tracing.propagation import propagator_from_env

__all__ = ["bootstrap"]


def _flush_on_sigterm(providers: list[TracerProvider | MeterProvider]) -> None:
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return  # the service handles SIGTERM itself; atexit still flushes

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        for provider in providers:
            provider.shutdown()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)  # die by the signal, as without memlens

    signal.signal(signal.SIGTERM, on_sigterm)


def bootstrap() -> TracerProvider:
    """Configure tracing in this process (idempotent per process) and return the provider."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    set_global_textmap(propagator_from_env())
    service = os.environ.get("OTEL_SERVICE_NAME") or Path(sys.argv[0] or "python").stem
    attributes: dict[str, str | int] = {"service.name": service, "process.pid": os.getpid()}
    script = entry_point()
    if script is not None:
        attributes[ENTRY_POINT] = script
    resource = Resource.create(attributes)
    sample_memory = os.environ.get("MEMLENS_MEMORY", "1") != "0"
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(CodeLocationSpanProcessor(sample_memory=sample_memory))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    providers: list[TracerProvider | MeterProvider] = [provider]
    if sample_memory:
        providers.append(start_memory_metrics(resource, interval_from_env()))
    instrument_libraries()
    if threading.current_thread() is threading.main_thread():
        _flush_on_sigterm(providers)
    return provider
