"""Training code that follows a model load of the file, from the source alone: optimizers
over ``model.parameters()``, ``get_peft_model(model, LoraConfig(...))`` (QLoRA over a
4-bit load), ``Trainer(model=…, args=TrainingArguments(...))`` (``SFTTrainer`` and
``SFTConfig`` too) and ``loss.backward()`` in a hand-written loop, each with the
:class:`TrainingConfig` the script states.

Names are followed file-wide: a model name means the last assignment to it before the
use (a load, ``get_peft_model``, ``prepare_model_for_kbit_training``, ``.to(...)``).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, replace

from memlens.errors import UsageError
from memlens.lsp_server.analysis.findings import ModelLoad, Position, Span, TrainingSite
from memlens.lsp_server.analysis.source_index import CallSite, SourceIndex
from memlens.lsp_server.analysis.static_values import Scope, evaluate
from memlens.lsp_server.analysis.training_changes import FixContext, Insertion, training_changes
from memlens.lsp_server.analysis.training_script import (
    HAND_LOOP_OPTIMIZERS,
    ScriptFacts,
    anchor,
    keyword,
    last_name,
    load_precision,
    script_facts,
    trainer_config,
)
from memlens.profiler.training_config import TrainingConfig, TrainMethod

_PEFT_DEFAULT_RANK = 8
"""``LoraConfig``'s ``r`` when the script states none."""
_TRAINERS = frozenset({"Trainer", "SFTTrainer", "Seq2SeqTrainer"})
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


class _Finder:
    def __init__(
        self,
        index: SourceIndex,
        loads: tuple[ModelLoad, ...],
        span: Callable[[ast.expr], Span],
        facts: ScriptFacts,
        insertion: Insertion,
        lines: list[str],
    ) -> None:
        self.lines = lines
        self.index = index
        self.span = span
        self.facts = facts
        self.insertion = insertion
        self.sites = sorted(index.calls, key=lambda c: (c.call.lineno, c.call.col_offset))
        self.bindings: dict[str, list[_Binding]] = {}
        self.checkpointed: dict[str, list[Position]] = {}
        for load in loads:
            if load.target is not None:
                self.bindings.setdefault(load.target, []).append(
                    _Binding(load.span.start, None, load=load)
                )
        for site in self.sites:
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

    # -- sites ---------------------------------------------------------------------------
    def find(self) -> list[TrainingSite]:
        found: list[TrainingSite] = []
        optimizers: list[tuple[TrainingSite, str, CallSite]] = []
        for site in self.sites:
            call = site.call
            name = self.name(call)
            at = self.span(call).start
            if name in HAND_LOOP_OPTIMIZERS and (model_name := _parameters_of(call)):
                model = self.model(model_name, at)
                if model is not None:
                    built = self._hand_site("optimizer", call, model, model_name, site)
                    found.append(built)
                    optimizers.append((built, model_name, site))
            elif name == "get_peft_model" and isinstance(first := _first(call), ast.Name):
                model = self.model(first.id, at)
                lora = self.lora(_second(call, "peft_config"), site.scope.scope())
                if model is not None and lora is not None:
                    found.append(self._lora_site(call, replace(model, lora=lora)))
            elif name in _TRAINERS and (trainer := self._trainer_site(call, site)):
                found.append(trainer)
        for site in self.sites:
            call = site.call
            func = call.func
            if isinstance(func, ast.Attribute) and func.attr == "backward" and not call.args:
                at = self.span(call).start
                before = [o for o in optimizers if o[0].span.start < at] or optimizers
                if before:
                    optimizer, model_name, optimizer_site = before[-1]
                    model = self.model(model_name, optimizer.span.start)
                    if model is not None:
                        found.append(
                            replace(
                                self._hand_site(
                                    "backward", optimizer_site.call, model, model_name, site
                                ),
                                span=self.span(call),
                            )
                        )
        return found

    def _config(
        self, model: TrainedModel, base: TrainingConfig
    ) -> tuple[TrainingConfig | None, str | None]:
        """``base`` with the model's LoRA and checkpointing; (None, why) when invalid."""
        lora = model.lora
        if lora is not None and (lora.rank is None or not lora.known):
            return None, None
        method = TrainMethod.FULL
        if lora is not None:
            method = TrainMethod.QLORA if model.load.quantization == "int4" else TrainMethod.LORA
        try:
            return (
                TrainingConfig(
                    method=method,
                    lora_rank=lora.rank if lora is not None and lora.rank is not None else 16,
                    lora_targets=lora.targets if lora is not None else None,
                    optimizer=base.optimizer,
                    precision=base.precision,
                    gradient_checkpointing=base.gradient_checkpointing or model.checkpointing,
                    batch=base.batch,
                    seq=base.seq,
                ),
                None,
            )
        except UsageError as exc:
            return None, str(exc)

    def _lora_site(self, call: ast.Call, model: TrainedModel) -> TrainingSite:
        config, problem = self._config(model, TrainingConfig())
        return TrainingSite(self.span(call), "lora", model.load, config, problem)

    def _hand_site(
        self, kind: str, optimizer: ast.Call, model: TrainedModel, model_name: str, site: CallSite
    ) -> TrainingSite:
        """An optimizer over a model's parameters, or the backward call of its loop."""
        facts = self.facts
        scope = site.scope.scope()
        chosen, problem = HAND_LOOP_OPTIMIZERS[self.name(optimizer)](optimizer, scope)
        precision = facts.autocast or load_precision(model.load)
        shape = facts.batch, facts.seq
        known = chosen is not None and None not in shape
        if kind == "optimizer" and chosen is not None:  # its states need no batch or seq
            shape, known = (facts.batch or 1, facts.seq or 1), True
        config = None
        if known and problem is None:
            assert chosen is not None and shape[0] is not None and shape[1] is not None
            base = TrainingConfig(optimizer=chosen, precision=precision)
            try:
                base = replace(base, batch=shape[0], seq=shape[1])
            except UsageError as exc:
                problem = str(exc)
            else:
                config, problem = self._config(model, base)
        where = anchor(facts, optimizer)
        context = FixContext(
            load=model.load,
            model_name=model_name,
            anchor=where,
            can_wrap=self.can_wrap(model_name, where),
            aliases=self.index.aliases,
            span=self.span,
            insertion=self.insertion,
            optimizer_func=optimizer.func,
        )
        return TrainingSite(
            self.span(site.call),
            kind,
            model.load,
            config,
            problem,
            changes=training_changes(config, context) if config and kind == "backward" else (),
        )

    def _trainer_site(self, call: ast.Call, site: CallSite) -> TrainingSite | None:
        model_node = keyword(call, "model")
        model_expr = model_node.value if model_node else _first(call)
        if not isinstance(model_expr, ast.Name):
            return None
        at = self.span(call).start
        model = self.model(model_expr.id, at)
        if model is None:
            return None
        scope = site.scope.scope()
        peft = self.lora(_keyword_value(call, "peft_config"), scope)
        if peft is not None:
            model = replace(model, lora=peft)
        args = _keyword_value(call, "args")
        if args is None and len(call.args) > 1:
            args = call.args[1]
        if isinstance(args, ast.Name):
            args = scope.node(args.id)
        args_call = args if isinstance(args, ast.Call) else None
        stated = trainer_config(self.index, args_call, call, model.load, self.facts, scope)
        config, problem = (None, stated.problem)
        if stated.config is not None:
            config, problem = self._config(model, stated.config)
        where = anchor(self.facts, call)
        context = FixContext(
            load=model.load,
            model_name=model_expr.id,
            anchor=where,
            can_wrap=self.can_wrap(model_expr.id, where),
            aliases=self.index.aliases,
            span=self.span,
            insertion=self.insertion,
            args_call=args_call,
            fp16=stated.fp16,
        )
        return TrainingSite(
            self.span(call),
            "trainer",
            model.load,
            config,
            problem,
            stated.assumed,
            training_changes(config, context) if config else (),
        )


def _first(call: ast.Call) -> ast.expr | None:
    return call.args[0] if call.args else None


def _keyword_value(call: ast.Call, name: str) -> ast.expr | None:
    found = keyword(call, name)
    return found.value if found else None


def _second(call: ast.Call, name: str) -> ast.expr | None:
    value = _keyword_value(call, name)
    return value if value is not None else (call.args[1] if len(call.args) > 1 else None)


def _parameters_of(call: ast.Call) -> str | None:
    """``model`` for ``Optimizer(model.parameters(), …)`` (or ``params=``)."""
    node = _keyword_value(call, "params") or _first(call)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "parameters"
        and isinstance(node.func.value, ast.Name)
    ):
        return node.func.value.id
    return None


def find_training_sites(
    tree: ast.Module,
    lines: list[str],
    index: SourceIndex,
    loads: tuple[ModelLoad, ...],
    span: Callable[[ast.expr], Span],
    insertion: Insertion,
) -> tuple[TrainingSite, ...]:
    """Every training site of the file that follows one of ``loads``, in source order."""
    facts = script_facts(tree, lines, index)
    sites = _Finder(index, loads, span, facts, insertion, lines).find()
    return tuple(sorted(sites, key=lambda s: s.span.start))
