"""``ping``: liveness and identity (pid, versions) of the worker."""

from __future__ import annotations

import os
import sys
from typing import Any

from memlens import __version__
from memlens.worker.methods import RequestContext, method


@method("ping")
def ping(params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
    """The worker's pid and versions; ``torch`` is reported only if already imported."""
    torch = sys.modules.get("torch")
    return {
        "pid": os.getpid(),
        "memlens": __version__,
        "torch": getattr(torch, "__version__", None),
    }
