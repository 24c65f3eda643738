"""Analytic parameter and KV-cache formulas, one module per architecture family.

Pure Python: importing this package must not import torch (the language server calls
it on every edit). Each family module registers a describer for its ``model_type``.
"""

from memlens.profiler.architectures import (  # noqa: F401  (each module registers itself)
    bert,
    falcon,
    gemma,
    glm,
    gpt2,
    llama,
    mistral,
    opt,
    phi3,
    qwen,
)
from memlens.profiler.architectures.registry import describe, supported_model_types
from memlens.profiler.architectures.spec import (
    ArchitectureSpec,
    AttentionSpec,
    BlockKind,
    BlockSpec,
    ModelDims,
)

__all__ = [
    "ArchitectureSpec",
    "AttentionSpec",
    "BlockKind",
    "BlockSpec",
    "ModelDims",
    "describe",
    "supported_model_types",
]
