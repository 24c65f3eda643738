"""OTLP/HTTP metric payloads from ``memlens run`` to :class:`MemorySample` lists.

``memlens run`` exports gauges every ``MEMLENS_MEMORY_INTERVAL_S`` seconds (see
:mod:`memlens.tracing.memory`); the gauges of one collection share their timestamp, so one
(resource, timestamp) is one sample. Metrics other than these gauges are ignored, as are
points without a resident set size: the collector only keeps memory.
"""

from __future__ import annotations

import math
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import NumberDataPoint

from memlens.tracing.otlp import BadPayloadError, attributes_of, check_times, parse_message
from memlens.tracing.records import MemorySample

__all__ = [
    "CUDA_ALLOCATED",
    "CUDA_RESERVED",
    "ENTRY_POINT",
    "PEAK_RSS",
    "RSS",
    "decode_metrics_request",
    "samples_from_request",
]

RSS = "process.memory.usage"
"""Gauge: the process's resident set size, bytes (OpenTelemetry's process semconv name)."""
PEAK_RSS = "memlens.process.memory.peak"
"""Gauge: the process's peak resident set size since it started, bytes, as the operating
system reports it (OpenTelemetry's process semantic conventions have no name for it)."""
CUDA_ALLOCATED = "memlens.cuda.memory.allocated"
"""Gauge: bytes held by tensors in torch's CUDA caching allocator."""
CUDA_RESERVED = "memlens.cuda.memory.reserved"
"""Gauge: bytes the CUDA caching allocator holds from the driver."""
ENTRY_POINT = "memlens.entry_point"
"""Resource attribute: absolute path of the script ``memlens run`` launched."""
_FIELDS = {RSS: 0, CUDA_ALLOCATED: 1, CUDA_RESERVED: 2, PEAK_RSS: 3}
_MAX_BYTES = 2**63 - 1
"""Largest byte count the store holds (SQLite integers are signed 64-bit)."""


def decode_metrics_request(body: bytes, content_type: str) -> ExportMetricsServiceRequest:
    """Parse an ``ExportMetricsServiceRequest`` in protobuf or OTLP JSON."""
    return parse_message(body, content_type, ExportMetricsServiceRequest())


def _bytes(point: NumberDataPoint, which: str, name: str) -> int:
    """A gauge point's value as whole bytes; BadPayloadError for NaN, infinities and
    values outside 0 .. 2**63 - 1."""
    value = getattr(point, which)
    if not math.isfinite(value) or not 0 <= value <= _MAX_BYTES:
        raise BadPayloadError(f"{name} value {value!r} is not a byte count")
    return int(value)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def samples_from_request(request: ExportMetricsServiceRequest) -> list[MemorySample]:
    """One sample per resource and gauge timestamp that has a ``process.memory.usage``."""
    samples = []
    for resource_metrics in request.resource_metrics:
        resource = attributes_of(resource_metrics.resource.attributes)
        service = str(resource.get("service.name") or "unknown_service")
        pid = _int(resource.get("process.pid")) or 0
        entry_point = resource.get(ENTRY_POINT)
        by_time: dict[int, list[int | None]] = {}
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                column = _FIELDS.get(metric.name)
                if column is None or metric.WhichOneof("data") != "gauge":
                    continue
                for point in metric.gauge.data_points:
                    which = point.WhichOneof("value")
                    if which is None:
                        continue
                    check_times(point.time_unix_nano)
                    values = by_time.setdefault(point.time_unix_nano, [None] * len(_FIELDS))
                    values[column] = _bytes(point, which, metric.name)
        for time_ns, (rss, allocated, reserved, peak) in sorted(by_time.items()):
            if rss is None:
                continue
            samples.append(
                MemorySample(
                    service=service,
                    pid=pid,
                    entry_point=str(entry_point) if entry_point else None,
                    time_ns=time_ns,
                    rss_bytes=rss,
                    cuda_allocated_bytes=allocated,
                    cuda_reserved_bytes=reserved,
                    peak_rss_bytes=peak,
                )
            )
    return samples
