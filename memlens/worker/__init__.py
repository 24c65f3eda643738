"""The worker process (``python -m memlens.worker``): the only process that imports torch
and transformers on the editor's behalf. JSON lines over stdio (DESIGN.md §4)."""
