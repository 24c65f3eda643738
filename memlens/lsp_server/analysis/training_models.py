"""Following a model name through a training script: the last assignment before a use
(a load, ``get_peft_model``, ``prepare_model_for_kbit_training``, ``.to(...)``), file-wide,
and what wraps it (LoRA, gradient checkpointing)."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, replace

from memlens.lsp_server.analysis.findings import ModelLoad, Position, Span
from memlens.lsp_server.analysis.source_index import CallSite, SourceIndex
from memlens.lsp_server.analysis.static_values import Scope, evaluate
from memlens.lsp_server.analysis.training_script import keyword, last_name

_PEFT_DEFAULT_RANK = 8
"""``LoraConfig``'s ``r`` when the script states none."""
_PASS_THROUGH = frozenset({"to", "cuda", "train", "float", "bfloat16", "half"})
_MAX_DEPTH = 32


@dataclass(frozen=True)
class Lora:
    """What a ``LoraConfig`` states."""

    rank: int | None
    """``r`` (peft's 8 when not given); None when not static."""
    targets: tuple[str, ...] | None
    """``target_modules``; None: the family's default."""
    known: bool = True
    """False when ``target_modules`` is not static."""


@dataclass(frozen=True)
class TrainedModel:
    """A model name at one place in the file: its load and what wraps it."""

    load: ModelLoad
    lora: Lora | None = None
    checkpointing: bool = False
    """``gradient_checkpointing_enable()`` or ``prepare_model_for_kbit_training`` ran."""


@dataclass(frozen=True)
class _Binding:
    at: Position
    call: ast.Call | None
    load: ModelLoad | None = None
    base: str | None = None
    """The name the call wraps (``get_peft_model(base, …)``)."""
    lora: Lora | None = None
    checkpointing: bool = False


class ModelNames:
    """The file's model names: each assignment that binds one, in source order."""

    def __init__(
        self,
        index: SourceIndex,
        loads: tuple[ModelLoad, ...],
        span: Callable[[ast.expr], Span],
        lines: list[str],
        sites: list[CallSite],
    ) -> None:
        self.lines = lines
        self.index = index
        self.span = span
        self.bindings: dict[str, list[_Binding]] = {}
        self.checkpointed: dict[str, list[Position]] = {}
        for load in loads:
            if load.target is not None:
                self.bindings.setdefault(load.target, []).append(
                    _Binding(load.span.start, None, load=load)
                )
        for site in sites:
            self._bind(site)
        for found in self.bindings.values():
            found.sort(key=lambda b: b.at)

    def name(self, call: ast.Call) -> str:
        return last_name(self.index, call)

    def lora(self, node: ast.expr | None, scope: Scope) -> Lora | None:
        if isinstance(node, ast.Name):
            node = scope.node(node.id)
        if not (isinstance(node, ast.Call) and self.name(node) == "LoraConfig"):
            return None
        rank_node = keyword(node, "r")
        rank = _PEFT_DEFAULT_RANK if rank_node is None else evaluate(rank_node.value, scope)
        targets_node = keyword(node, "target_modules")
        targets = evaluate(targets_node.value, scope) if targets_node else None
        if isinstance(targets, str):
            targets = (targets,)
        known = targets is None or (
            isinstance(targets, tuple) and all(isinstance(t, str) for t in targets)
        )
        return Lora(
            rank if isinstance(rank, int) and not isinstance(rank, bool) else None,
            targets if known and targets is not None else None,
            known,
        )

    def _bind(self, site: CallSite) -> None:
        call = site.call
        func = call.func
        at = self.span(call).start
        if isinstance(func, ast.Attribute) and func.attr == "gradient_checkpointing_enable":
            if isinstance(func.value, ast.Name):
                self.checkpointed.setdefault(func.value.id, []).append(at)
            return
        target = self.index.targets.get(id(call))
        if target is None or any(b.at == at for b in self.bindings.get(target, [])):
            return  # not assigned, or a model load (bound already)
        name = self.name(call)
        scope = site.scope.scope()
        first = call.args[0] if call.args else None
        if name == "get_peft_model" and isinstance(first, ast.Name):
            config = keyword(call, "peft_config")
            lora = self.lora(
                config.value if config else (call.args[1] if len(call.args) > 1 else None), scope
            )
            binding = _Binding(at, call, base=first.id, lora=lora)
        elif name == "prepare_model_for_kbit_training" and isinstance(first, ast.Name):
            flag = keyword(call, "use_gradient_checkpointing")
            checkpointing = flag is None or evaluate(flag.value, scope) is True
            binding = _Binding(at, call, base=first.id, checkpointing=checkpointing)
        elif (
            isinstance(func, ast.Attribute)
            and func.attr in _PASS_THROUGH
            and isinstance(func.value, ast.Name)
        ):
            binding = _Binding(at, call, base=func.value.id)
        else:
            binding = _Binding(at, call)  # the name now holds something else
        self.bindings.setdefault(target, []).append(binding)

    def model(self, name: str, before: Position, depth: int = 0) -> TrainedModel | None:
        """What ``name`` holds just before ``before``."""
        earlier = [b for b in self.bindings.get(name, []) if b.at < before]
        if not earlier or depth > _MAX_DEPTH:
            return None
        binding = earlier[-1]
        if binding.load is not None:
            found: TrainedModel | None = TrainedModel(binding.load)
        elif binding.base is not None:
            found = self.model(binding.base, binding.at, depth + 1)
        else:
            return None
        if found is None:
            return None
        if binding.lora is not None:
            found = replace(found, lora=binding.lora)
        checkpointed = binding.checkpointing or any(
            binding.at < at < before for at in self.checkpointed.get(name, [])
        )
        return replace(found, checkpointing=found.checkpointing or checkpointed)

    def can_wrap(self, name: str, where: tuple[Position, str]) -> bool:
        """Whether ``name`` was last bound, before ``where``, at ``where``'s indentation."""
        earlier = [b for b in self.bindings.get(name, []) if b.at < where[0]]
        if not earlier:
            return False
        line = self.lines[earlier[-1].at.line]
        return line[: len(line) - len(line.lstrip())] == where[1]
