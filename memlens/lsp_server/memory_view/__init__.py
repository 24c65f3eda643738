"""A worker result (``kind`` estimate, profile, compress or training-profile) → the memory
view's whole payload.

The webview only draws what this builds: titles, figures, bars with their byte sizes and
texts, the legend, the budget line, the table's columns and cells (raw value for sorting,
formatted text for showing), the same rows grouped by layer kind (``summary_rows``: what
the table shows until the user asks for every layer), the checkpoint a compression wrote,
and the notes. Pure: no torch, no I/O. A result that cannot be drawn raises
:class:`~memlens.errors.MalformedReportError` naming the bad field.

``payload`` holds the shape, ``reading`` the field readers, ``drawing`` the bars and
tables every report uses, ``inference`` and ``training`` one builder per report kind,
``build`` the door.
"""

from memlens.lsp_server.memory_view.build import build_memory_view
from memlens.lsp_server.memory_view.payload import (
    VERSION,
    Bar,
    Budget,
    Cell,
    Column,
    Figure,
    LayerGroup,
    LegendItem,
    MemoryView,
    Segment,
    SegmentKind,
)

__all__ = [
    "VERSION",
    "Bar",
    "Budget",
    "Cell",
    "Column",
    "Figure",
    "LayerGroup",
    "LegendItem",
    "MemoryView",
    "Segment",
    "SegmentKind",
    "build_memory_view",
]
