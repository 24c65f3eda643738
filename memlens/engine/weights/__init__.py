"""Compressed weights: configs and their ``--weights`` syntax (``config.py``), the
compressed Linear layers (``layers.py``), the scheme registry (``schemes.py``),
``compress_`` (``quantize.py``), the ``auto`` sensitivity plan (``sensitivity.py``) and
checkpoints (``checkpoint.py``). Importing this package imports none of them."""
