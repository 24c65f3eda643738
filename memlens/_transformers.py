"""Import transformers on demand, once, for every part that runs models (the profiler's
exact estimator, the engine, the worker): none imports it at module level, so that
importing memlens, its configs or the language server never pulls it in."""

from __future__ import annotations

import threading
from typing import Any

from memlens.errors import DependencyError

_IMPORT_LOCK = threading.Lock()
_LAZY_ATTRIBUTES = (
    "AutoConfig",
    "AutoModel",
    "AutoModelForCausalLM",
    "StoppingCriteria",
    "StoppingCriteriaList",
    "pytorch_utils",
)


def transformers_module() -> Any:
    """Import transformers once, resolving its lazy attributes under a lock: two threads
    touching a lazy attribute for the first time at once can see it missing."""
    with _IMPORT_LOCK:
        try:
            import transformers
        except ImportError as exc:  # pragma: no cover - transformers is a dependency
            raise DependencyError(
                "memlens needs transformers to load or measure a model: pip install memlens"
            ) from exc
        for name in _LAZY_ATTRIBUTES:
            getattr(transformers, name)
        transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        return transformers
