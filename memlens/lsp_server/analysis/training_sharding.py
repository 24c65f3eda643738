"""The sharding a ``TrainingArguments(deepspeed=…, fsdp=…)`` states: a DeepSpeed config
given as a dict literal (its ``zero_optimization.stage``) or FSDP's option string."""

from __future__ import annotations

import ast

from memlens.lsp_server.analysis.static_values import Scope, evaluate
from memlens.profiler.training_config import Sharding

_ZERO_STAGES = {0: Sharding.NONE, 1: Sharding.ZERO1, 2: Sharding.ZERO2, 3: Sharding.ZERO3}
_FSDP_OPTIONS = {
    "full_shard": Sharding.FSDP,
    "hybrid_shard": Sharding.FSDP,
    "shard_grad_op": Sharding.ZERO2,
    "hybrid_shard_zero2": Sharding.ZERO2,
}


def stated_sharding(args: ast.Call | None, scope: Scope) -> tuple[Sharding, str | None]:
    """The sharding ``args`` states, and what could not be read (None when all could)."""
    if args is None:
        return Sharding.NONE, None
    for keyword in args.keywords:
        if keyword.arg == "deepspeed":
            return _deepspeed(keyword.value, scope)
        if keyword.arg == "fsdp":
            return _fsdp(keyword.value, scope)
    return Sharding.NONE, None


def _deepspeed(node: ast.expr, scope: Scope) -> tuple[Sharding, str | None]:
    if isinstance(node, ast.Name):
        node = scope.node(node.id) or node
    stage_node = _entry(_entry(node, "zero_optimization"), "stage")
    stage = evaluate(stage_node, scope) if stage_node is not None else None
    if type(stage) is int and stage in _ZERO_STAGES:
        return _ZERO_STAGES[stage], None
    return Sharding.NONE, "deepspeed: its ZeRO stage is not a literal here; figures unsharded"


def _entry(node: ast.expr | None, key: str) -> ast.expr | None:
    """``node[key]`` of a dict literal."""
    if not isinstance(node, ast.Dict):
        return None
    for name, value in zip(node.keys, node.values, strict=True):
        if isinstance(name, ast.Constant) and name.value == key:
            return value
    return None


def _fsdp(node: ast.expr, scope: Scope) -> tuple[Sharding, str | None]:
    value = evaluate(node, scope)
    if value in (False, "", None):
        return Sharding.NONE, None
    options = value.split() if isinstance(value, str) else value
    if not isinstance(options, (tuple, list)) or not all(isinstance(o, str) for o in options):
        return Sharding.NONE, "fsdp: its options are not literals here; figures unsharded"
    for option in options:
        if option in _FSDP_OPTIONS:
            return _FSDP_OPTIONS[option], None
    return Sharding.NONE, None
