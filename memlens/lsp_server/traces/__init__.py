"""Traces in the editor: the collector process the server starts, polling of the
workspace's trace store, and which functions' code lenses show their spans."""

from memlens.lsp_server.traces.trace_lenses import function_ranges, function_traces, lens_title
from memlens.lsp_server.traces.trace_watch import STORE_PATH, TraceWatch

__all__ = ["STORE_PATH", "TraceWatch", "function_ranges", "function_traces", "lens_title"]
