"""Worker methods; importing this package registers each of them."""

from memlens.worker.tasks import compress, estimate, ping, profile  # noqa: F401
