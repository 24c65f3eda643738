"""Local distributed tracing: propagation, ``memlens run`` instrumentation, the OTLP
collector, the SQLite trace store, topology and Jaeger links.

Submodules import OpenTelemetry; this package imports nothing so that ``memlens`` stays
fast to import.
"""
