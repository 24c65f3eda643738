"""The truth for the static evaluator's figures: a model source run by Python with torch
on the meta device (no memory, no weights), and what torch counts in the result."""

from __future__ import annotations

import itertools
import sys
import types
from typing import Any

import torch
from torch import nn

_NAMES = itertools.count()


def run_on_meta(source: str) -> dict[str, Any]:
    """The namespace of ``source`` executed with every tensor on the meta device."""
    module = types.ModuleType(f"meta_model_{next(_NAMES)}")
    sys.modules[module.__name__] = module  # dataclasses looks its module up there
    with torch.device("meta"):
        exec(compile(source, "<model source>", "exec"), module.__dict__)
    return module.__dict__


def build_on_meta(namespace: dict[str, Any], expression: str) -> nn.Module:
    """``expression`` (``GPT(GPTConfig(n_layer=24))``) evaluated in ``namespace`` on meta."""
    with torch.device("meta"):
        module = eval(expression, namespace)
    assert isinstance(module, nn.Module)
    return module


def torch_size(module: nn.Module) -> tuple[int, int]:
    """(parameters, bytes of parameters and buffers), tied parameters once (as torch's
    ``parameters()`` yields them)."""
    params = list(module.parameters())
    count = sum(p.numel() for p in params)
    size = sum(p.numel() * p.element_size() for p in params)
    size += sum(b.numel() * b.element_size() for b in module.buffers())
    return count, size
