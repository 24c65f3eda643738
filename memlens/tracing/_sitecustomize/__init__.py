"""The ``sitecustomize`` module ``memlens run`` puts on the child's ``PYTHONPATH``."""
