"""The ``--train …`` options ``memlens estimate`` and ``memlens profile`` share, and the
training estimate's table."""

from __future__ import annotations

import argparse

from rich import box
from rich.console import Console
from rich.table import Table

from memlens.profiler.layer_groups import group_training_blocks
from memlens.profiler.training import TrainingEstimate
from memlens.profiler.training_config import (
    Optimizer,
    Precision,
    Sharding,
    TrainingConfig,
    training_config,
)
from memlens.units import format_bytes, format_count

DEFAULT_SEQ = 512


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """``--train`` and the options that shape a training step."""
    group = parser.add_argument_group("training (with --train)")
    group.add_argument(
        "--train",
        metavar="METHOD",
        help="a training step instead of inference: full, lora[:rN] or qlora[:rN] "
        "(rank defaults to 16)",
    )
    group.add_argument(
        "--lora-targets",
        metavar="NAMES",
        help="comma-separated module names the adapters wrap, or all-linear "
        "(default: peft's for the family, e.g. q_proj,v_proj)",
    )
    group.add_argument(
        "--optimizer",
        default=Optimizer.ADAMW.value,
        help=f"{', '.join(o.value for o in Optimizer)} (default: %(default)s)",
    )
    group.add_argument(
        "--precision",
        default=Precision.FP32.value,
        help=f"{', '.join(p.value for p in Precision)} (default: %(default)s)",
    )
    group.add_argument(
        "--grad-checkpointing", action="store_true", help="recompute activations in backward"
    )
    group.add_argument(
        "--seq", type=int, help=f"tokens per training sequence (default: {DEFAULT_SEQ})"
    )
    group.add_argument("--devices", type=int, default=1, help="data-parallel devices")
    group.add_argument(
        "--sharding",
        default=Sharding.NONE.value,
        help=f"{', '.join(s.value for s in Sharding)} (default: %(default)s)",
    )


def config_from_args(args: argparse.Namespace) -> TrainingConfig:
    """The TrainingConfig the options describe (UsageError for a bad one)."""
    return training_config(
        args.train,
        lora_targets=args.lora_targets,
        optimizer=args.optimizer,
        precision=args.precision,
        gradient_checkpointing=args.grad_checkpointing,
        batch=args.batch,
        seq=DEFAULT_SEQ if args.seq is None else args.seq,
        devices=args.devices,
        sharding=args.sharding,
    )


def render_training(estimate: TrainingEstimate, console: Console) -> None:
    """Per block: weights, trainable parameters, adapters, gradients, optimizer states,
    master weights, saved activations; then the step's totals and fit."""
    config = estimate.config
    console.print(
        f"[bold]{estimate.model}[/] · {estimate.family} ({estimate.model_class}) · "
        f"{format_count(estimate.params)} params · training {config.describe()}"
    )
    table = Table(
        title="Training memory by block (one device, unsharded)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("block", overflow="fold", min_width=16)
    for name in ("trainable", "weights", "adapters", "grads", "optim", "master", "saved"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("saved (ckpt)", justify="right", no_wrap=True)
    for label, count, block in group_training_blocks(estimate.blocks):
        table.add_row(
            label + (f" ×{count}" if count > 1 else ""),
            format_count(block.trainable_params * count),
            format_bytes(block.weight_bytes * count),
            format_bytes(block.adapter_bytes * count),
            format_bytes(block.gradient_bytes * count),
            format_bytes(block.optimizer_bytes * count),
            format_bytes(block.master_bytes * count),
            format_bytes(block.activation_bytes_plain * count),
            format_bytes(block.activation_bytes_checkpointed * count),
        )
    console.print(table)
    share = f" per device ({config.devices} × {config.sharding})" if config.devices > 1 else ""
    parts = {
        "weights": estimate.weight_bytes,
        "adapters": estimate.adapter_bytes,
        "gradients": estimate.gradient_bytes,
        "optimizer": estimate.optimizer_bytes,
        "master": estimate.master_bytes,
    }
    console.print(
        f"trainable {format_count(estimate.trainable_params)} of "
        f"{format_count(estimate.params)} · model states{share} "
        f"{format_bytes(estimate.model_state_bytes)} ("
        + ", ".join(f"{name} {format_bytes(size)}" for name, size in parts.items())
        + f") · saved activations {format_bytes(estimate.activation_bytes)}"
    )
    fit_text = " · ".join(
        f"{fit.name} ({format_bytes(fit.capacity_bytes)}): "
        + ("[green]fits[/]" if fit.fits else "[red]does not fit[/]")
        for fit in estimate.fits
    )
    console.print(
        f"step peak [bold]{format_bytes(estimate.peak_bytes)}[/] (at {estimate.peak_phase})"
        + (f" · {fit_text}" if fit_text else "")
    )
    for note in estimate.notes:
        console.print(f"[yellow]note:[/] {note}")
