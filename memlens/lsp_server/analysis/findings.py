"""What the static analysis finds in Python source (DESIGN.md §4 ``Finding``).

Positions are 0-based lines and code-point columns of the analysed text; the server
converts them to the client's position encoding at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from memlens.profiler.training_config import Sharding, TrainingConfig


@dataclass(frozen=True, order=True)
class Position:
    """A place in the text: 0-based line, code-point column."""

    line: int
    col: int


@dataclass(frozen=True)
class Span:
    """A range of text, end exclusive."""

    start: Position
    end: Position

    def contains(self, position: Position) -> bool:
        """True when ``position`` lies inside the span (end inclusive, for cursors)."""
        return self.start <= position <= self.end


@dataclass(frozen=True)
class ModelLoad:
    """``X.from_pretrained(...)``, ``X.from_config(...)``, ``pipeline(..., model=...)`` or
    memlens's ``load_model(ID, dtype, weights=...)``."""

    span: Span
    loader: str
    model_ref: str | None
    """The id or path, when it is a literal or a module constant."""
    dtype: str | None
    """``fp32``/``bf16``/``fp16``/``auto``; None when not given; ``?`` when not static."""
    dtype_keyword: str | None = None
    """``dtype`` or ``torch_dtype`` when the call passes one."""
    dtype_span: Span | None = None
    """Span of the dtype argument's value, for quick fixes that replace it."""
    insert_at: Position | None = None
    """Where a new keyword argument goes: just before the closing parenthesis."""
    insert_prefix: str = ", "
    """What an inserted keyword argument starts with: ``", "`` after an argument, ``" "``
    after a trailing comma, ``""`` in an empty call."""
    device_map: str | None = None
    quantization: str | None = None
    """``int8`` or ``int4`` from ``load_in_8bit/4bit``, a ``BitsAndBytesConfig`` or
    ``load_model``'s ``weights=Int8WeightConfig()``/``Int4WeightConfig(...)``."""
    group_size: int | None = None
    """INT4's group size as ``Int4WeightConfig(group_size=N)`` writes it; None: the default."""
    trust_remote_code: bool = False
    target: str | None = None
    """The variable the model is assigned to."""
    double_star: bool = False
    """The call passes ``**kwargs``, which may already hold a dtype."""
    config: dict[str, object] | None = None
    """For ``from_config(CONFIG)``: the literal fields of that ``*Config(...)`` call."""
    only_id_and_dtype: bool = False
    """The call passes nothing but the model id and a dtype (no chained cast either), so
    ``load_model`` can do the same load: the engine quick fixes rewrite only such loads."""


@dataclass(frozen=True)
class LayerFinding:
    """A layer constructor (``nn.Linear(4096, 11008)``) inside an ``nn.Module`` class."""

    span: Span
    layer: str
    owner: str
    params: int | None
    """Parameters of one instance; None when an argument is not known statically."""
    count: int | None = 1
    """Instances made by enclosing comprehensions/loops; None when not static."""
    dtype: str = "fp32"
    """``fp32``/``bf16``/``fp16``/``fp64``, or ``?`` when the dtype argument is not static."""


@dataclass(frozen=True)
class SubmoduleUse:
    """A module class of this file instantiated inside another (``Block(cfg)``)."""

    span: Span
    module: str
    owner: str
    count: int | None = 1


@dataclass(frozen=True)
class ModelSize:
    """What running a module's constructor statically builds (tied tensors counted once)."""

    params: int
    bytes: int
    """Parameters and buffers at their dtypes."""
    unknown: tuple[str, ...] = ()
    """Dotted names of parts that may hold parameters but could not be sized: when any,
    ``params`` and ``bytes`` are a floor."""
    parts: tuple[tuple[str, int], ...] = ()
    """Parameters of each direct submodule or own parameter, in construction order."""
    dtype: str = "fp32"
    """The parameters' dtype (``mixed`` when they differ)."""
    defaults_of: str | None = None
    """The config class whose defaults ``__init__``'s config parameter took, if any."""


@dataclass(frozen=True)
class ModuleClass:
    """An ``nn.Module`` subclass: its header and what it builds."""

    span: Span
    name: str
    layers: tuple[LayerFinding, ...] = ()
    submodules: tuple[SubmoduleUse, ...] = ()
    unknown_parts: int = 0
    """Modules or parameters ``__init__`` creates that memlens cannot count (an
    ``nn.Parameter``, an ``nn.GRU``, a class from another file)."""
    size: ModelSize | None = None
    """What ``__init__`` builds with its parameters' defaults (None: not evaluated)."""


@dataclass(frozen=True)
class DtypeSlot:
    """Where a dtype goes in a build's source: ``span`` replaced by ``template`` with
    ``{dtype}`` filled in (``.to({dtype})`` chained at the end, or ``{dtype}`` in place of
    the dtype a chained ``.to(...)`` names)."""

    span: Span
    template: str


@dataclass(frozen=True)
class ModelBuild:
    """A call outside module constructors that builds a module class of the file
    (``GPT(GPTConfig(n_layer=24))``, ``Transformer.from_name("7B").half()``)."""

    span: Span
    module: str
    size: ModelSize
    cast: DtypeSlot
    """Where a quick fix writes another dtype."""
    target: str | None = None
    cast_sizes: tuple[tuple[str, ModelSize], ...] = ()
    """What the build makes once cast to each quick-fix dtype (``bf16``, ``fp16``), sized
    by the evaluator from the source as it reads after the fix."""

    def size_as(self, dtype: str) -> ModelSize | None:
        """The size after a quick fix to ``dtype``; None when not computed."""
        return next((size for name, size in self.cast_sizes if name == dtype), None)


@dataclass(frozen=True)
class GenerateCall:
    """``X.generate(..., max_new_tokens=N)``."""

    span: Span
    target: str | None
    max_new_tokens: int | None
    batch_size: int | None = None


@dataclass(frozen=True)
class DtypeChange:
    """``model.half()``, ``model.to(torch.bfloat16)``, ``model.float()``."""

    span: Span
    target: str
    dtype: str


@dataclass(frozen=True)
class ConfigCall:
    """A transformers ``*Config(...)`` constructor with its literal fields."""

    span: Span
    config_class: str
    model_type: str
    fields: dict[str, object]
    target: str | None = None


@dataclass(frozen=True)
class SyntaxProblem:
    """A region the parser could not read; its findings are skipped, the rest kept."""

    span: Span
    message: str


@dataclass(frozen=True)
class Analysis:
    """Everything found in one version of one document."""

    version: int | None
    loads: tuple[ModelLoad, ...] = ()
    classes: tuple[ModuleClass, ...] = ()
    generates: tuple[GenerateCall, ...] = ()
    dtype_changes: tuple[DtypeChange, ...] = ()
    configs: tuple[ConfigCall, ...] = ()
    builds: tuple[ModelBuild, ...] = ()
    batch_sizes: tuple[int, ...] = ()
    syntax_problems: tuple[SyntaxProblem, ...] = field(default=())
    torch_name: str | None = None
    """The local name bound to the ``torch`` module (``T`` after ``import torch as T``)."""
    import_line: int = 0
    """Where a new top-level import goes: after the docstring and ``__future__`` imports."""
    engine_import: tuple[Span, tuple[str, ...]] | None = None
    """The first top-level ``from memlens.engine import …`` (not ``*``): its span and the
    names as written (``load_model``, ``compress_ as c``), for quick fixes that add names
    to it."""
    training: tuple[TrainingSite, ...] = ()
    """Training sites that follow a model load of the file."""


@dataclass(frozen=True)
class SourceEdit:
    """Replace ``span`` by ``text`` (an empty span inserts)."""

    span: Span
    text: str


@dataclass(frozen=True)
class TrainingChange:
    """One quick fix of a training site: the configuration the edited code states, and
    the edits (plus the import lines, added where the file lacks the names) that write it."""

    name: str
    """``gradient checkpointing``, ``bf16 mixed precision``, ``8-bit optimizer``, ``LoRA``
    or ``QLoRA``."""
    config: TrainingConfig
    edits: tuple[SourceEdit, ...]
    imports: tuple[str, ...] = ()
    """Whole import lines (``from peft import LoraConfig, get_peft_model``)."""
    load: ModelLoad | None = None
    """The base model's load as the edited code writes it, when a change edits it (QLoRA
    loads in 4 bits); None: the site's load unchanged."""


@dataclass(frozen=True)
class TrainingSite:
    """Training code that follows a model of the file: an optimizer over its parameters,
    its LoRA wrap, a ``Trainer`` or ``loss.backward()`` of a hand-written loop."""

    span: Span
    kind: str
    """``optimizer``, ``lora``, ``trainer`` or ``backward``."""
    load: ModelLoad | None
    """The base model's load (followed through ``get_peft_model`` and friends)."""
    config: TrainingConfig | None
    """The step's configuration as the script states it; None when a figure it needs is
    not static or not valid (``problem`` says which)."""
    problem: str | None = None
    """Why the script's configuration is invalid (a LoRA rank of 0, an unknown ``optim``,
    a batch of 0), for a diagnostic; None when valid or merely unknown."""
    assumed: tuple[str, ...] = ()
    """What the configuration assumes that the script does not state (``seq 512``)."""
    changes: tuple[TrainingChange, ...] = ()
    """Quick fixes, in the order the over-budget diagnostic tries them."""
    sharding: Sharding = Sharding.NONE
    """What ``TrainingArguments(deepspeed=…, fsdp=…)`` states: the figures are per device
    over ``memlens.training.devices`` devices when that is more than 1."""

    @property
    def reports_peak(self) -> bool:
        """Whether the site's hint is the step's peak (a Trainer, a backward call)."""
        return self.kind in ("trainer", "backward")
