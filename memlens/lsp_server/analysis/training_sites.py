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
from dataclasses import replace

from memlens.errors import UsageError
from memlens.lsp_server.analysis.findings import ModelLoad, Span, TrainingSite
from memlens.lsp_server.analysis.source_index import CallSite, SourceIndex
from memlens.lsp_server.analysis.training_changes import FixContext, Insertion, training_changes
from memlens.lsp_server.analysis.training_models import ModelNames, TrainedModel
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

_TRAINERS = frozenset({"Trainer", "SFTTrainer", "Seq2SeqTrainer"})


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
        self.index = index
        self.span = span
        self.facts = facts
        self.insertion = insertion
        self.sites = sorted(index.calls, key=lambda c: (c.call.lineno, c.call.col_offset))
        self.names = ModelNames(index, loads, span, lines, self.sites)

    def name(self, call: ast.Call) -> str:
        return last_name(self.index, call)

    # -- sites ---------------------------------------------------------------------------
    def find(self) -> list[TrainingSite]:
        found: list[TrainingSite] = []
        optimizers: list[tuple[TrainingSite, str, CallSite]] = []
        for site in self.sites:
            call = site.call
            name = self.name(call)
            at = self.span(call).start
            if name in HAND_LOOP_OPTIMIZERS and (model_name := _parameters_of(call)):
                model = self.names.model(model_name, at)
                if model is not None:
                    built = self._hand_site("optimizer", call, model, model_name, site)
                    found.append(built)
                    optimizers.append((built, model_name, site))
            elif name == "get_peft_model" and isinstance(first := _first(call), ast.Name):
                model = self.names.model(first.id, at)
                lora = self.names.lora(_second(call, "peft_config"), site.scope.scope())
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
                    model = self.names.model(model_name, optimizer.span.start)
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
            can_wrap=self.names.can_wrap(model_name, where),
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
        model = self.names.model(model_expr.id, at)
        if model is None:
            return None
        scope = site.scope.scope()
        peft = self.names.lora(_keyword_value(call, "peft_config"), scope)
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
            can_wrap=self.names.can_wrap(model_expr.id, where),
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
            stated.sharding,
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
