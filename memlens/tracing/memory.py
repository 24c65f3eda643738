"""Periodic memory metrics from a process under ``memlens run``.

:func:`start_memory_metrics` (called by :func:`memlens.tracing.instrument.bootstrap`, never at
import) gives the process an OpenTelemetry ``MeterProvider`` of its own (the global one is
left to the service) whose ``PeriodicExportingMetricReader`` thread reads, every
``MEMLENS_MEMORY_INTERVAL_S`` seconds (default 1), the gauges

- ``process.memory.usage``: resident set size, bytes;
- ``memlens.process.memory.peak``: the most resident memory since the process started,
  bytes, as the operating system keeps it (:func:`peak_rss_bytes`): a spike that comes and
  goes between two readings still shows;
- ``memlens.cuda.memory.allocated`` / ``memlens.cuda.memory.reserved``: torch's CUDA caching
  allocator, bytes summed over devices, only once the service has initialised CUDA;

and sends them over OTLP/HTTP to ``OTEL_EXPORTER_OTLP_[METRICS_]ENDPOINT`` (the collector's
``/v1/metrics``), flushing a last reading at exit. The resource carries ``service.name``,
``process.pid`` and ``memlens.entry_point`` (:func:`entry_point`), which the editor uses to
put a memory diagnostic on the service's script.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from memlens.tracing.otlp_metrics import CUDA_ALLOCATED, CUDA_RESERVED, PEAK_RSS, RSS

__all__ = [
    "DEFAULT_INTERVAL_S",
    "INTERVAL_ENV",
    "entry_point",
    "interval_from_env",
    "peak_rss_bytes",
    "start_memory_metrics",
]

_log = logging.getLogger(__name__)

INTERVAL_ENV = "MEMLENS_MEMORY_INTERVAL_S"
"""Environment variable: seconds between memory readings."""
DEFAULT_INTERVAL_S = 1.0
"""Seconds between memory readings when ``MEMLENS_MEMORY_INTERVAL_S`` is unset."""


def interval_from_env(environ: Mapping[str, str] = os.environ) -> float:
    """``MEMLENS_MEMORY_INTERVAL_S`` in seconds; a value that is not a positive number is
    logged and replaced by the default (a bad setting must not stop the service)."""
    raw = environ.get(INTERVAL_ENV)
    if raw is None:
        return DEFAULT_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        _log.warning(
            "memlens: %s=%r is not a positive number of seconds; using %s",
            INTERVAL_ENV,
            raw,
            DEFAULT_INTERVAL_S,
        )
        return DEFAULT_INTERVAL_S
    return value


def _module_file(name: str, search: Sequence[str]) -> str | None:
    """Where ``python -m name`` finds its code, without importing (running) any package."""
    spec: ModuleSpec | None = None
    path: Sequence[str] | None = list(search)
    parts = name.split(".")
    for i in range(len(parts)):
        if path is None:
            return None  # a parent that is a module, not a package
        spec = PathFinder.find_spec(".".join(parts[: i + 1]), list(path))
        if spec is None:
            return None
        path = spec.submodule_search_locations
    if spec is not None and spec.submodule_search_locations is not None:
        spec = PathFinder.find_spec(f"{name}.__main__", list(spec.submodule_search_locations))
    if spec is None or not spec.has_location or spec.origin is None:
        return None
    return str(Path(spec.origin).resolve())


def entry_point(
    argv: Sequence[str] | None = None, orig_argv: Sequence[str] | None = None
) -> str | None:
    """Absolute path of the script this interpreter was started to run: ``sys.argv[0]``
    resolved, or for ``python -m module`` the module's file (``__main__.py`` of a package);
    None for ``-c``, the REPL, or a module that cannot be found.

    Works from ``sitecustomize``, before ``runpy`` has set ``sys.argv[0]`` to the module's
    path (there it is still ``"-m"``)."""
    argv = sys.argv if argv is None else argv
    orig_argv = sys.orig_argv if orig_argv is None else orig_argv
    first = argv[0] if argv else ""
    if first == "-m":
        options = list(orig_argv[1:])
        for i, arg in enumerate(options):
            if arg == "-m" and i + 1 < len(options):
                return _module_file(options[i + 1], [os.getcwd(), *sys.path])
            if arg.startswith("-m") and len(arg) > 2:
                return _module_file(arg[2:], [os.getcwd(), *sys.path])
        return None
    if first in ("", "-c") or not Path(first).exists():
        return None
    if Path(first).is_dir():  # python DIR runs DIR/__main__.py
        main = Path(first) / "__main__.py"
        return str(main.resolve()) if main.is_file() else None
    return str(Path(first).resolve())


def _rss_reader() -> Callable[[CallbackOptions], Iterable[Observation]]:
    process: Any = None

    def read(options: CallbackOptions) -> Iterable[Observation]:
        nonlocal process
        if process is None:
            import psutil

            process = psutil.Process()
        return [Observation(int(process.memory_info().rss))]

    return read


def _vm_hwm_bytes(status: str) -> int | None:
    """``VmHWM`` (the resident high-water mark, in kB meaning KiB) of a Linux
    ``/proc/PID/status`` text, in bytes; None when absent."""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def peak_rss_bytes() -> int | None:
    """The most resident memory this process has had since it started, bytes, as the
    operating system counts it; None where it keeps no such count.

    Linux: ``VmHWM`` from ``/proc/self/status``, the high-water mark of this program's
    memory. Not ``getrusage().ru_maxrss``: Linux carries that across ``exec`` from the
    image before it, and a child started with ``vfork`` (as ``subprocess`` does) would
    report its parent's peak. macOS and the BSDs: ``ru_maxrss`` (bytes on macOS, KiB
    elsewhere). Windows: the peak working set."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/status") as status:
                return _vm_hwm_bytes(status.read())
        except OSError:
            return None
    if sys.platform == "win32":
        import psutil

        return int(getattr(psutil.Process().memory_info(), "peak_wset", 0)) or None
    import resource

    peak = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return peak if sys.platform == "darwin" else peak * 1024


def _read_peak_rss(options: CallbackOptions) -> Iterable[Observation]:
    peak = peak_rss_bytes()
    return [] if peak is None else [Observation(peak)]


def _cuda_reader(stat: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def read(options: CallbackOptions) -> Iterable[Observation]:
        torch = sys.modules.get("torch")  # never import torch for the service
        if torch is None or not torch.cuda.is_initialized():
            return []
        read_stat = getattr(torch.cuda, stat)
        return [Observation(sum(int(read_stat(d)) for d in range(torch.cuda.device_count())))]

    return read


MAX_SKIPPED_EXPORTS = 64
"""After failures, exports skipped at most between two tries (readings are dropped)."""


class _BackingOffExporter(MetricExporter):
    """Skips 1, 2, 4 … up to MAX_SKIPPED_EXPORTS readings after each failed export: an
    endpoint that takes no metrics (a Jaeger, or a collector not started yet) costs a
    failed request and its logged error about once a minute, not every interval, and a
    collector that starts later gets readings again within a minute."""

    def __init__(self, exporter: MetricExporter) -> None:
        super().__init__(
            preferred_temporality=exporter._preferred_temporality,
            preferred_aggregation=exporter._preferred_aggregation,
        )
        self._exporter = exporter
        self._skip = 0
        self._backoff = 0

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        """Export, unless backing off after a failure (then drop the reading)."""
        if self._skip:
            self._skip -= 1
            return MetricExportResult.SUCCESS  # dropped on purpose: nothing to retry
        result = self._exporter.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        if result is MetricExportResult.SUCCESS:
            self._backoff = 0
        else:
            self._backoff = min(max(1, 2 * self._backoff), MAX_SKIPPED_EXPORTS)
            self._skip = self._backoff
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Flush the wrapped exporter."""
        return self._exporter.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Shut the wrapped exporter down."""
        self._exporter.shutdown(timeout_millis=timeout_millis, **kwargs)


def start_memory_metrics(resource: Resource, interval_s: float) -> MeterProvider:
    """Start exporting this process's memory gauges every ``interval_s`` seconds (one
    background thread, the SDK's periodic reader); shut the provider down to stop."""
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    reader = PeriodicExportingMetricReader(
        _BackingOffExporter(OTLPMetricExporter()), export_interval_millis=interval_s * 1000
    )
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter("memlens.memory")
    meter.create_observable_gauge(
        RSS, callbacks=[_rss_reader()], unit="By", description="resident set size"
    )
    meter.create_observable_gauge(
        PEAK_RSS,
        callbacks=[_read_peak_rss],
        unit="By",
        description="peak resident set size since the process started, as the OS counts it",
    )
    meter.create_observable_gauge(
        CUDA_ALLOCATED,
        callbacks=[_cuda_reader("memory_allocated")],
        unit="By",
        description="bytes held by tensors in torch's CUDA caching allocator",
    )
    meter.create_observable_gauge(
        CUDA_RESERVED,
        callbacks=[_cuda_reader("memory_reserved")],
        unit="By",
        description="bytes torch's CUDA caching allocator holds from the driver",
    )
    return provider
