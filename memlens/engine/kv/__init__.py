"""The compressed KV cache: its config and ``--kv`` syntax (``config.py``), the
transformers ``Cache`` that stores INT8/INT4 keys and values (``cache.py``) and the
eviction policies' arithmetic (``eviction.py``). Importing this package imports none of
them."""
