"""The memlens language server (pygls). Never imports torch or transformers: everything
that needs them runs in the worker process (``python -m memlens.worker``)."""
