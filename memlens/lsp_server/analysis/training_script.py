"""What a training script states about its step, from the source alone: the optimizer a
hand-written loop builds, ``TrainingArguments``/``SFTConfig`` fields, and the batch and
sequence length (a ``DataLoader``'s ``batch_size``, ``max_length=`` or a ``max_length``
constant, an input tensor's ``(B, T)`` shape)."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass

from memlens.errors import UsageError
from memlens.lsp_server.analysis.dtype_names import static_dtype
from memlens.lsp_server.analysis.findings import ModelLoad, Position
from memlens.lsp_server.analysis.source_index import SourceIndex, canonical_name
from memlens.lsp_server.analysis.static_values import UNKNOWN, Scope, dotted_name, evaluate
from memlens.lsp_server.analysis.training_sharding import stated_sharding
from memlens.profiler.training_config import Optimizer, Precision, Sharding, TrainingConfig

TRAINING_ARGUMENTS = frozenset({"TrainingArguments", "SFTConfig", "Seq2SeqTrainingArguments"})
DEFAULT_BATCH = 8
"""``per_device_train_batch_size``'s default in transformers."""
DEFAULT_SEQ = 512
SFT_DEFAULT_SEQ = 1024
"""trl's ``SFTConfig.max_length`` default."""
SEQ_CONSTANTS = frozenset(
    {"max_length", "max_seq_length", "max_len", "seq_len", "seq_length", "block_size"}
)
"""Module constants (any case) that state the training sequence length."""
_TENSOR_FACTORIES = frozenset({"randint", "randn", "rand", "zeros", "ones", "empty"})
HF_OPTIMIZERS: dict[str, Optimizer] = {
    **dict.fromkeys(
        (
            "adamw_torch",
            "adamw_torch_fused",
            "adamw_hf",
            "adamw_apex_fused",
            "adamw_torch_xla",
            "adamw_torch_npu_fused",
        ),
        Optimizer.ADAMW,
    ),
    **dict.fromkeys(
        ("adamw_8bit", "adamw_bnb_8bit", "paged_adamw_8bit", "adamw_torch_8bit"),
        Optimizer.ADAMW8BIT,
    ),
    "adafactor": Optimizer.ADAFACTOR,
    "sgd": Optimizer.SGD,
}
"""``TrainingArguments(optim=…)`` names memlens sizes → the optimizer they build."""
HF_8BIT_OPTIM = "adamw_8bit"


def keyword(call: ast.Call, name: str) -> ast.keyword | None:
    """The call's ``name=`` keyword argument."""
    return next((k for k in call.keywords if k.arg == name), None)


def last_name(index: SourceIndex, call: ast.Call) -> str:
    """``AdamW`` for ``torch.optim.AdamW(...)`` (through the file's imports)."""
    full = canonical_name(index.aliases, dotted_name(call.func)) or ""
    return full.rsplit(".", 1)[-1]


OptimizerReader = Callable[[ast.Call, Scope], tuple[Optimizer | None, str | None]]


def _fixed(optimizer: Optimizer) -> OptimizerReader:
    return lambda call, scope: (optimizer, None)


def _sgd(call: ast.Call, scope: Scope) -> tuple[Optimizer | None, str | None]:
    """Plain SGD keeps no state; with momentum it keeps a buffer memlens does not size."""
    momentum = keyword(call, "momentum")
    if momentum is None or evaluate(momentum.value, scope) in (0, 0.0):
        return Optimizer.SGD, None
    return None, None


HAND_LOOP_OPTIMIZERS: dict[str, OptimizerReader] = {
    "AdamW": _fixed(Optimizer.ADAMW),
    "Adam": _fixed(Optimizer.ADAMW),
    "SGD": _sgd,
    "Adafactor": _fixed(Optimizer.ADAFACTOR),
    **{
        name: _fixed(Optimizer.ADAMW8BIT)
        for name in ("AdamW8bit", "Adam8bit", "PagedAdamW8bit", "PagedAdam8bit")
    },
}
"""Optimizer classes of a hand-written loop (torch, transformers, bitsandbytes) → how to
read which optimizer one builds."""


@dataclass(frozen=True)
class ScriptFacts:
    """File-wide figures the training step depends on (None: not stated)."""

    batch: int | None
    seq: int | None
    autocast: Precision | None
    """``torch.autocast(dtype=torch.bfloat16)`` somewhere in the file."""
    statements: dict[int, tuple[int, str]]
    """``id(call)`` → the 0-based line of the innermost statement holding it and that
    statement's indentation."""


def _shape(call: ast.Call, scope: Scope) -> tuple[int, int] | None:
    """``torch.randint(0, V, (B, T))`` (or ``size=``) → (B, T)."""
    size = keyword(call, "size")
    candidates = [size.value] if size else [a for a in call.args if isinstance(a, ast.Tuple)]
    for candidate in candidates:
        value = evaluate(candidate, scope)
        if isinstance(value, tuple) and len(value) == 2 and all(type(v) is int for v in value):
            return value[0], value[1]
    return None


def _module_seq(index: SourceIndex) -> int | None:
    scope = index.module.scope()
    for name in index.module.counts:
        if name.lower() in SEQ_CONSTANTS:
            value = scope.lookup(name)
            if type(value) is int:
                return int(value)
    return None


def _statements(tree: ast.Module, lines: list[str]) -> dict[int, tuple[int, str]]:
    found: dict[int, tuple[int, str]] = {}
    for statement in ast.walk(tree):  # breadth first: an inner statement overwrites
        if not isinstance(statement, ast.stmt):
            continue
        line = statement.lineno - 1
        text = lines[line] if line < len(lines) else ""
        indent = text[: len(text) - len(text.lstrip())]
        for node in ast.walk(statement):
            if isinstance(node, ast.Call):
                found[id(node)] = (line, indent)
    return found


def script_facts(tree: ast.Module, lines: list[str], index: SourceIndex) -> ScriptFacts:
    """The batch, sequence length and autocast precision the file states."""
    batch = seq = None
    shape: tuple[int, int] | None = None
    autocast = None
    for site in index.calls:
        call, scope = site.call, site.scope.scope()
        name = last_name(index, call)
        if name == "DataLoader" and (found := keyword(call, "batch_size")):
            value = evaluate(found.value, scope)
            batch = value if type(value) is int else batch
        elif name in _TENSOR_FACTORIES and shape is None:
            shape = _shape(call, scope)
        elif name == "autocast" and (dtype := keyword(call, "dtype")):
            stated = static_dtype(dtype.value, scope, index.aliases)
            autocast = {"bf16": Precision.BF16_MIXED, "fp16": Precision.FP16_MIXED}.get(stated)
        if name not in TRAINING_ARGUMENTS and name != "generate":
            length = keyword(call, "max_length")
            value = evaluate(length.value, scope) if length else UNKNOWN
            if type(value) is int:
                seq = max(seq or 0, value)
    if seq is None:
        seq = _module_seq(index)
    return ScriptFacts(
        batch if batch is not None else (shape[0] if shape else None),
        seq if seq is not None else (shape[1] if shape else None),
        autocast,
        _statements(tree, lines),
    )


@dataclass(frozen=True)
class StatedStep:
    """What a Trainer's arguments state: the configuration before any LoRA wrap (None
    with ``problem`` when a value is invalid, or without when one is not static)."""

    config: TrainingConfig | None
    problem: str | None = None
    assumed: tuple[str, ...] = ()
    fp16: bool = False
    """``fp16=True`` is stated (the bf16 quick fix would clash with it)."""
    sharding: Sharding = Sharding.NONE
    """What ``deepspeed=``/``fsdp=`` state (applied when ``memlens.training.devices`` > 1)."""


_LOAD_PRECISION = {"bf16": Precision.BF16_MIXED, "fp16": Precision.FP16_MIXED}


def load_precision(load: ModelLoad) -> Precision:
    """A load in bf16/fp16 trains as that mixed precision; anything else as fp32."""
    return _LOAD_PRECISION.get(load.dtype or "", Precision.FP32)


def _flag(call: ast.Call | None, name: str, scope: Scope) -> bool | None:
    """``name=True/False`` (False when absent); None when not static."""
    found = keyword(call, name) if call is not None else None
    if found is None:
        return False
    value = evaluate(found.value, scope)
    return value if isinstance(value, bool) else None


def trainer_config(
    index: SourceIndex,
    args: ast.Call | None,
    trainer: ast.Call,
    load: ModelLoad,
    facts: ScriptFacts,
    scope: Scope,
) -> StatedStep:
    """The step a ``Trainer(args=TrainingArguments(...))`` configures."""
    assumed: list[str] = []
    if args is not None and any(k.arg is None for k in args.keywords):
        return StatedStep(None)  # **kwargs may set anything
    flags = {name: _flag(args, name, scope) for name in ("gradient_checkpointing", "bf16", "fp16")}
    if None in flags.values():
        return StatedStep(None)
    batch_node = keyword(args, "per_device_train_batch_size") if args else None
    batch: object = DEFAULT_BATCH
    if batch_node is None:
        assumed.append(f"batch {DEFAULT_BATCH} (the default)")
    else:
        batch = evaluate(batch_node.value, scope)
    if type(batch) is not int:
        return StatedStep(None)
    if batch < 1:
        return StatedStep(
            None, f"per_device_train_batch_size={batch}: a step needs at least one sequence"
        )
    optim_node = keyword(args, "optim") if args else None
    optimizer = Optimizer.ADAMW
    if optim_node is not None:
        value = evaluate(optim_node.value, scope)
        if not isinstance(value, str):
            return StatedStep(None)
        if value.lower() not in HF_OPTIMIZERS:
            known = ", ".join(sorted(HF_OPTIMIZERS))
            return StatedStep(
                None, f"optim={value!r} is not an optimizer memlens can size; it knows {known}"
            )
        optimizer = HF_OPTIMIZERS[value.lower()]
    seq = _trainer_seq(args, trainer, facts, scope, assumed)
    if seq is None:
        return StatedStep(None)
    precision = load_precision(load)
    if flags["bf16"]:
        precision = Precision.BF16_MIXED
    elif flags["fp16"]:
        precision = Precision.FP16_MIXED
    sharding, unread = stated_sharding(args, scope)
    if unread is not None:
        assumed.append(unread)
    try:
        config = TrainingConfig(
            optimizer=optimizer,
            precision=precision,
            gradient_checkpointing=bool(flags["gradient_checkpointing"]),
            batch=batch,
            seq=seq,
        )
    except UsageError as exc:
        return StatedStep(None, str(exc))
    return StatedStep(config, None, tuple(assumed), bool(flags["fp16"]), sharding)


def _trainer_seq(
    args: ast.Call | None, trainer: ast.Call, facts: ScriptFacts, scope: Scope, assumed: list[str]
) -> int | None:
    """``SFTConfig(max_length=…)``, ``SFTTrainer(max_seq_length=…)``, the file's
    ``max_length``; else the default (stated in ``assumed``); None when not static."""
    for call in (args, trainer):
        for name in ("max_length", "max_seq_length"):
            found = keyword(call, name) if call is not None else None
            if found is not None:
                value = evaluate(found.value, scope)
                return value if type(value) is int else None
    if facts.seq is not None:
        return facts.seq
    sft = args is not None and (dotted_name(args.func) or "").endswith("SFTConfig")
    seq = SFT_DEFAULT_SEQ if sft else DEFAULT_SEQ
    assumed.append(f"seq {seq} (not stated)")
    return seq


def anchor(facts: ScriptFacts, call: ast.Call) -> tuple[Position, str]:
    """Where a line goes that must run before ``call``'s statement, and its indentation."""
    line, indent = facts.statements.get(id(call), (call.lineno - 1, ""))
    return Position(line, 0), indent
