"""memlens: memory hints, compressed inference and local tracing for LLM code.

Importing memlens imports no torch; the exact estimator and measurements import it when
called.
"""

from memlens.errors import (
    ConfigError,
    DependencyError,
    MemlensError,
    ModelNotFoundError,
    UnsupportedArchitectureError,
    UsageError,
)
from memlens.profiler.configs import ResolvedConfig, resolve_config
from memlens.profiler.estimate import LayerMemory, MemoryEstimate, analytic_estimate
from memlens.profiler.tensors import StorageDtype

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DependencyError",
    "LayerMemory",
    "MemlensError",
    "MemoryEstimate",
    "ModelNotFoundError",
    "ResolvedConfig",
    "StorageDtype",
    "UnsupportedArchitectureError",
    "UsageError",
    "__version__",
    "analytic_estimate",
    "resolve_config",
]
