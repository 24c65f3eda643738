"""The quick fixes of a training site, tried in this order by the over-budget diagnostic:
gradient checkpointing, bf16 mixed precision, an 8-bit optimizer, LoRA, QLoRA. Each says
the configuration the edited code states (the analysis of the edited text finds exactly
that one) and the edits that write it."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, replace

from memlens.lsp_server.analysis.findings import (
    ModelLoad,
    Position,
    SourceEdit,
    Span,
    TrainingChange,
)
from memlens.lsp_server.analysis.training_script import HF_8BIT_OPTIM, keyword
from memlens.profiler.training_config import Optimizer, Precision, TrainingConfig, TrainMethod

FIX_RANK = 16
"""The LoRA rank the LoRA and QLoRA fixes write."""
Insertion = Callable[[ast.Call], tuple[Position, str]]
"""Where a new keyword argument of a call goes and what it starts with (``", "``)."""


@dataclass(frozen=True)
class FixContext:
    """Where a site's fixes write."""

    load: ModelLoad
    model_name: str
    """The name the model is bound to where the site uses it."""
    anchor: tuple[Position, str]
    """The start of the line a wrapping statement goes before, and its indentation."""
    aliases: dict[str, str]
    span: Callable[[ast.expr], Span]
    insertion: Insertion
    args_call: ast.Call | None = None
    """A Trainer's ``TrainingArguments(...)`` call (its fixes set keyword arguments)."""
    optimizer_func: ast.expr | None = None
    """A hand loop's optimizer class (``torch.optim.AdamW``), replaced by the 8-bit one."""
    fp16: bool = False
    can_wrap: bool = True
    """Whether a ``model = get_peft_model(model, …)`` line may go before the anchor: the
    name is bound at the anchor's indentation (in a function that does not bind it, the
    assignment would make it a local read before it is bound)."""


def _local(aliases: dict[str, str], full: str) -> str | None:
    return next((local for local, name in aliases.items() if name == full), None)


def _from_imports(aliases: dict[str, str], module: str, names: tuple[str, ...]) -> list[str]:
    """The names as the file spells them, and ``from module import …`` for those missing."""
    missing = [n for n in names if _local(aliases, f"{module}.{n}") is None]
    return [f"from {module} import {', '.join(missing)}"] if missing else []


def _spelled(aliases: dict[str, str], module: str, name: str) -> str:
    return _local(aliases, f"{module}.{name}") or name


def _set_keyword(context: FixContext, name: str, value: str) -> SourceEdit:
    """``name=value`` in the TrainingArguments call: replace the value, or add the pair."""
    call = context.args_call
    assert call is not None
    found = keyword(call, name)
    if found is not None:
        return SourceEdit(context.span(found.value), value)
    at, prefix = context.insertion(call)
    last = call.keywords[-1] if call.keywords else None
    if (
        last is not None
        and last.arg
        and prefix == " "
        and at.line > context.span(last.value).end.line
    ):
        # one argument per line, closing parenthesis on its own line: a line of its own
        column = context.span(last.value).start.col - len(last.arg) - 1
        line_start = Position(at.line, 0)
        return SourceEdit(Span(line_start, line_start), f"{' ' * column}{name}={value},\n")
    return SourceEdit(Span(at, at), f"{prefix}{name}={value}")


def _wrap(context: FixContext) -> tuple[SourceEdit, list[str]]:
    """``model = get_peft_model(model, LoraConfig(r=16, task_type="CAUSAL_LM"))`` before
    the site's statement, with peft's names imported."""
    at, indent = context.anchor
    wrap = _spelled(context.aliases, "peft", "get_peft_model")
    lora = _spelled(context.aliases, "peft", "LoraConfig")
    name = context.model_name
    line = f'{indent}{name} = {wrap}({name}, {lora}(r={FIX_RANK}, task_type="CAUSAL_LM"))\n'
    return SourceEdit(Span(at, at), line), _from_imports(
        context.aliases, "peft", ("LoraConfig", "get_peft_model")
    )


def _lora(config: TrainingConfig, method: TrainMethod) -> TrainingConfig:
    if config.trains_adapters:
        return replace(config, method=method)
    return replace(config, method=method, lora_rank=FIX_RANK, lora_targets=None)


def _checkpointing(config: TrainingConfig, context: FixContext) -> TrainingChange | None:
    if config.gradient_checkpointing:
        return None
    changed = replace(config, gradient_checkpointing=True)
    if context.args_call is not None:
        edit = _set_keyword(context, "gradient_checkpointing", "True")
    elif context.optimizer_func is not None:
        at, indent = context.anchor
        edit = SourceEdit(
            Span(at, at), f"{indent}{context.model_name}.gradient_checkpointing_enable()\n"
        )
    else:
        return None
    return TrainingChange("gradient checkpointing", changed, (edit,))


def _bf16(config: TrainingConfig, context: FixContext) -> TrainingChange | None:
    if context.args_call is None or config.precision is not Precision.FP32 or context.fp16:
        return None
    changed = replace(config, precision=Precision.BF16_MIXED)
    return TrainingChange("bf16 mixed precision", changed, (_set_keyword(context, "bf16", "True"),))


def _eight_bit(config: TrainingConfig, context: FixContext) -> TrainingChange | None:
    if config.optimizer is not Optimizer.ADAMW:
        return None
    changed = replace(config, optimizer=Optimizer.ADAMW8BIT)
    if context.args_call is not None:
        edit = _set_keyword(context, "optim", f'"{HF_8BIT_OPTIM}"')
        return TrainingChange("8-bit optimizer", changed, (edit,))
    if context.optimizer_func is None:
        return None
    bnb = _local(context.aliases, "bitsandbytes")
    imports = () if bnb else ("import bitsandbytes as bnb",)
    edit = SourceEdit(context.span(context.optimizer_func), f"{bnb or 'bnb'}.optim.AdamW8bit")
    return TrainingChange("8-bit optimizer", changed, (edit,), imports)


def _lora_change(config: TrainingConfig, context: FixContext) -> TrainingChange | None:
    if config.trains_adapters or not context.can_wrap:
        return None
    edit, imports = _wrap(context)
    return TrainingChange("LoRA", _lora(config, TrainMethod.LORA), (edit,), tuple(imports))


def _qlora(config: TrainingConfig, context: FixContext) -> TrainingChange | None:
    load = context.load
    if (
        load.quantization is not None
        or load.insert_at is None
        or load.double_star
        or load.config is not None
        or not (config.trains_adapters or context.can_wrap)
    ):
        return None
    bnb = _spelled(context.aliases, "transformers", "BitsAndBytesConfig")
    at = load.insert_at
    edits = [
        SourceEdit(
            Span(at, at), f"{load.insert_prefix}quantization_config={bnb}(load_in_4bit=True)"
        )
    ]
    imports = _from_imports(context.aliases, "transformers", ("BitsAndBytesConfig",))
    if not config.trains_adapters:
        wrap, peft_imports = _wrap(context)
        edits.append(wrap)
        imports += peft_imports
    return TrainingChange(
        "QLoRA",
        _lora(config, TrainMethod.QLORA),
        tuple(edits),
        tuple(imports),
        replace(load, quantization="int4"),
    )


_CHANGES = (_checkpointing, _bf16, _eight_bit, _lora_change, _qlora)


def training_changes(config: TrainingConfig, context: FixContext) -> tuple[TrainingChange, ...]:
    """The fixes that apply to ``config`` where ``context`` says the code can be edited."""
    return tuple(change for make in _CHANGES if (change := make(config, context)) is not None)
