"""Per-layer sensitivity: how much each scheme would disturb each Linear's output.

Calibration token ids run once through the uncompressed model; forward hooks keep a
bounded sample of every Linear's input rows. Each candidate scheme then converts the
layer, and its relative output error ``‖f̂(X) - f(X)‖ / ‖f(X)‖`` on those rows is measured
against the float output. :func:`plan_auto` turns the table into a plan:

- with an error target, each layer gets the cheapest candidate within it (a layer no
  candidate can meet stays as it is);
- with a byte budget, it starts from the cheapest candidate for every layer and spends
  the rest of the budget greedily on the upgrade that removes the most error per byte.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from memlens.engine.weights.config import AutoWeightConfig, MixedWeightConfig, WeightConfig
from memlens.engine.weights.schemes import convert_linear, head_name, linear_targets, scheme_of
from memlens.errors import UsageError
from memlens.profiler.measure import module_bytes
from memlens.units import format_bytes

Progress = Callable[[str, int, int], None]
"""``(message, done, total)``."""
MAX_ROWS = 512
"""Calibration rows kept per layer (a strided sample of all tokens)."""


@dataclass(frozen=True)
class Option:
    """One way to store one layer."""

    config: WeightConfig | None
    """None: kept as it is."""
    nbytes: int
    rel_error: float
    scheme: str
    """What the layer would hold (``memlens.engine.weights.schemes.scheme_of``)."""


@dataclass(frozen=True)
class LayerChoice:
    """What a plan does to one Linear (the ``LayerReport`` of DESIGN.md §4)."""

    name: str
    scheme: str
    bytes_before: int
    bytes_after: int
    rel_error: float | None
    """None where the layer never ran on the calibration text."""


@dataclass(frozen=True)
class AutoPlan:
    """The resolved per-layer plan and what it costs."""

    config: MixedWeightConfig
    layers: tuple[LayerChoice, ...]


def capture_inputs(
    model: nn.Module, calibration: torch.Tensor, names: list[str], max_rows: int = MAX_ROWS
) -> dict[str, torch.Tensor]:
    """``{name: (≤ max_rows, in)}`` input rows of the named Linears on ``calibration``
    token ids ``(B, T)``."""
    rows: dict[str, torch.Tensor] = {}
    handles = []
    for name in names:

        def keep(module: nn.Module, args: tuple[torch.Tensor, ...], name: str = name) -> None:
            flat = args[0].detach().reshape(-1, args[0].shape[-1])  # (B·T, in)
            stride = max(1, flat.shape[0] // max_rows)
            rows[name] = flat[::stride][:max_rows].clone()

        handles.append(model.get_submodule(name).register_forward_pre_hook(keep))
    try:
        with torch.no_grad():
            model(input_ids=calibration)
    finally:
        for handle in handles:
            handle.remove()
    return rows


def relative_error(linear: nn.Linear, module: nn.Module, inputs: torch.Tensor) -> float:
    """``‖module(X) - linear(X)‖ / ‖linear(X)‖`` with ``linear`` evaluated in fp32."""
    with torch.no_grad():
        x = inputs.float()  # (n, in)
        bias = None if linear.bias is None else linear.bias.float()
        reference = nn.functional.linear(x, linear.weight.float(), bias)  # (n, out)
        approx = module(inputs).float()
    return float((approx - reference).norm() / reference.norm().clamp(min=1e-30))


def measure_options(
    linear: nn.Linear, inputs: torch.Tensor, candidates: tuple[WeightConfig | None, ...]
) -> list[Option]:
    """Bytes and error of each candidate for one layer (None: the layer as it is)."""
    options = []
    for config in candidates:
        module = linear if config is None else convert_linear(linear, config, inputs)
        kept = module is linear
        error = 0.0 if kept else relative_error(linear, module, inputs)
        options.append(
            Option(None if kept else config, module_bytes(module), error, scheme_of(module))
        )
    return options


def evaluate_plan(
    model: nn.Module,
    plan: Mapping[str, WeightConfig | None],
    calibration: torch.Tensor,
    on_progress: Progress | None = None,
) -> list[LayerChoice]:
    """What ``plan`` would do to each layer of the (still uncompressed) ``model``."""
    inputs = capture_inputs(model, calibration, list(plan))
    choices = []
    for done, (name, config) in enumerate(plan.items()):
        if on_progress:
            on_progress(f"Measuring {name}", done, len(plan))
        linear = model.get_submodule(name)
        assert isinstance(linear, nn.Linear)
        rows = inputs.get(name)
        if rows is None:  # never ran on the calibration text: its error is unknown
            module = linear if config is None else convert_linear(linear, config)
            held = module_bytes(module)
            choices.append(LayerChoice(name, scheme_of(module), module_bytes(linear), held, None))
            continue
        [option] = measure_options(linear, rows, (config,))
        choices.append(_choice(name, linear, option))
    return choices


def plan_auto(
    model: nn.Module,
    config: AutoWeightConfig,
    calibration: torch.Tensor | None,
    on_progress: Progress | None = None,
) -> AutoPlan:
    """Measure every candidate on every Linear and choose per layer (module docstring)."""
    if calibration is None:
        raise UsageError("auto compression needs calibration token ids")
    head = head_name(model)
    names = [
        name
        for name, _ in linear_targets(model)
        if not any(fnmatch.fnmatch(name, pattern) for pattern in config.skip)
    ]
    inputs = capture_inputs(model, calibration, names)
    table: dict[str, list[Option]] = {}
    for done, name in enumerate(names):
        if on_progress:
            on_progress(f"Measuring {name}", done, len(names))
        linear = model.get_submodule(name)
        assert isinstance(linear, nn.Linear)
        rows = inputs.pop(name, None)
        if rows is None:  # never ran on the calibration text (e.g. an unrouted expert)
            table[name] = [Option(None, module_bytes(linear), 0.0, scheme_of(linear))]
            continue
        candidates = (config.lm_head,) if name == head else (None, *config.candidates)
        table[name] = measure_options(linear, rows, candidates)
    if config.budget_bytes is not None:
        fixed = module_bytes(model) - sum(module_bytes(model.get_submodule(n)) for n in names)
        picked = _fit_budget(table, config.budget_bytes - fixed, config.budget_bytes)
    else:
        assert config.max_error is not None
        picked = {  # the head takes its explicit setting whatever its error
            n: options[0] if n == head else _cheapest_within(options, config.max_error)
            for n, options in table.items()
        }
    layers = tuple(
        _choice(name, model.get_submodule(name), option) for name, option in picked.items()
    )
    overrides = tuple((name, option.config) for name, option in picked.items())
    return AutoPlan(MixedWeightConfig(skip=config.skip, overrides=overrides), layers)


def _choice(name: str, linear: nn.Module, option: Option) -> LayerChoice:
    return LayerChoice(name, option.scheme, module_bytes(linear), option.nbytes, option.rel_error)


def _cheapest_within(options: list[Option], max_error: float) -> Option:
    fitting = [o for o in options if o.rel_error <= max_error or o.config is None]
    return min(fitting, key=lambda o: (o.nbytes, o.rel_error))


def _fit_budget(table: dict[str, list[Option]], available: int, budget: int) -> dict[str, Option]:
    picked = {
        name: min(options, key=lambda o: (o.nbytes, o.rel_error)) for name, options in table.items()
    }
    spent = sum(o.nbytes for o in picked.values())
    if spent > available:
        raise UsageError(
            f"budget {format_bytes(budget)} is below the smallest plan "
            f"({format_bytes(spent + budget - available)})"
        )
    while True:
        best: tuple[float, str, Option] | None = None
        for name, options in table.items():
            current = picked[name]
            for option in options:
                extra = option.nbytes - current.nbytes
                gain = current.rel_error - option.rel_error
                if gain <= 0 or spent + max(extra, 0) > available:
                    continue
                ratio = gain / max(extra, 1)
                if best is None or ratio > best[0]:
                    best = (ratio, name, option)
        if best is None:
            return picked
        _, name, option = best
        spent += option.nbytes - picked[name].nbytes
        picked[name] = option
