"""``memlens estimate MODEL``: the memory a model needs, block by block, per dtype."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from rich import box
from rich.console import Console
from rich.table import Table

from memlens.cli.output import stdout_console
from memlens.cli.training_options import add_training_arguments, config_from_args, render_training
from memlens.errors import UnsupportedArchitectureError
from memlens.profiler.configs import ResolvedConfig, resolve_config
from memlens.profiler.estimate import MemoryEstimate, analytic_estimate
from memlens.profiler.layer_groups import group_layers
from memlens.profiler.machine import fits, memory_pools
from memlens.profiler.tensors import (
    DEFAULT_GROUP_SIZE,
    VALID_GROUP_SIZES,
    StorageDtype,
    parse_dtypes,
)
from memlens.profiler.training import training_estimate
from memlens.units import format_bytes, format_count

NAME = "estimate"
HELP = "how much memory a model needs (weights per block and dtype, KV cache, activations)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``memlens estimate``."""
    parser.add_argument(
        "model",
        metavar="MODEL",
        help="model directory, config.json path, or Hugging Face id (resolved offline first)",
    )
    parser.add_argument(
        "--dtype",
        default="fp32,bf16,int8,int4",
        help="comma-separated storage dtypes: fp32, bf16, fp16, int8, int4 (default: %(default)s)",
    )
    parser.add_argument(
        "--group-size",
        type=int,
        default=DEFAULT_GROUP_SIZE,
        choices=VALID_GROUP_SIZES,
        help="INT4 quantization group size (default: %(default)s)",
    )
    parser.add_argument(
        "--context", type=int, help="tokens per sequence (default: 4096 or the model's maximum)"
    )
    parser.add_argument("--batch", type=int, default=1, help="sequences (default: %(default)s)")
    parser.add_argument(
        "--estimator",
        choices=("auto", "analytic", "exact"),
        default="auto",
        help="analytic formulas, the exact meta-device model, or auto: analytic where "
        "memlens has formulas for the architecture, exact otherwise (default: %(default)s)",
    )
    parser.add_argument("--offline", action="store_true", help="never ask the Hugging Face hub")
    parser.add_argument("--json", action="store_true", help="print MemoryEstimate JSON")
    add_training_arguments(parser)


def _training_run(args: argparse.Namespace, resolved: ResolvedConfig) -> int:
    config = config_from_args(args)
    estimate = training_estimate(resolved.config, resolved.model, config)
    estimate = dataclasses.replace(estimate, fits=fits(estimate.peak_bytes, memory_pools()))
    if args.json:
        json.dump(estimate.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render_training(estimate, stdout_console())
    return 0


def _estimate(
    resolved: ResolvedConfig, dtypes: tuple[StorageDtype, ...], args: argparse.Namespace
) -> list[MemoryEstimate]:
    options = {"group_size": args.group_size, "context": args.context, "batch": args.batch}
    if args.estimator != "exact":
        try:
            return analytic_estimate(resolved.config, resolved.model, dtypes, **options)
        except UnsupportedArchitectureError:
            if args.estimator == "analytic":
                raise
    from memlens.profiler.meta import exact_estimate

    with Console(stderr=True).status("Building the model on the meta device…"):
        return exact_estimate(resolved.config, resolved.model, dtypes, **options)


def run(args: argparse.Namespace) -> int:
    """Resolve, estimate, and print a table or JSON."""
    if args.train is not None:
        config_from_args(args)  # bad options fail before any look-up
        resolved = resolve_config(args.model, allow_network=not args.offline)
        return _training_run(args, resolved)
    dtypes = parse_dtypes(args.dtype)
    resolved = resolve_config(args.model, allow_network=not args.offline)
    pools = memory_pools()
    estimates = [
        dataclasses.replace(e, fits=fits(e.total_bytes, pools))
        for e in _estimate(resolved, dtypes, args)
    ]
    if args.json:
        json.dump([e.to_json() for e in estimates], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render(estimates, resolved, stdout_console())
    return 0


def render(estimates: list[MemoryEstimate], resolved: ResolvedConfig, console: Console) -> None:
    """Two tables: weights per block and dtype, then totals and fit per dtype."""
    first = estimates[0]
    console.print(
        f"[bold]{first.model}[/] · {first.family} ({first.model_class}) · "
        f"{format_count(first.params)} params · {first.source} estimate · "
        f"config from {resolved.origin}: {resolved.location}"
    )
    blocks = Table(
        title="Weights by block", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False
    )
    blocks.add_column("block", overflow="fold", min_width=20)
    blocks.add_column("params", justify="right", no_wrap=True)
    for e in estimates:
        blocks.add_column(e.dtype, justify="right", no_wrap=True)
    for group in group_layers(first.layers):
        layer = group.layer
        note = f" (tied to {layer.tied_to})" if layer.tied_to else ""
        if layer.sliding_window:
            note += f" (window {layer.sliding_window})"
        blocks.add_row(
            group.label + (f" ×{group.count}" if group.count > 1 else "") + note,
            format_count(layer.params * group.count),
            *(format_bytes(layer.bytes_by_dtype[e.dtype] * group.count) for e in estimates),
        )
    console.print(blocks)

    totals = Table(
        title=f"Totals for context {first.context} × batch {first.batch}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for name in ("dtype", "weights", "load peak", "KV/token", "KV cache", "activations", "total"):
        totals.add_column(name, justify="right" if name != "dtype" else "left")
    for fit in first.fits:
        totals.add_column(f"fits {fit.name} ({format_bytes(fit.capacity_bytes)})")
    for e in estimates:
        totals.add_row(
            e.dtype,
            format_bytes(e.weight_bytes),
            format_bytes(e.load_peak_bytes),
            format_bytes(e.kv_bytes_per_token),
            format_bytes(e.kv_cache_bytes),
            format_bytes(e.activations_bytes),
            f"[bold]{format_bytes(e.total_bytes)}[/]",
            *("[green]yes[/]" if f.fits else "[red]no[/]" for f in e.fits),
        )
    console.print(totals)
    if first.group_size and any(StorageDtype(e.dtype) is StorageDtype.INT4 for e in estimates):
        console.print(f"INT4: group size {first.group_size}, bf16 scale + zero per group.")
    if any(StorageDtype(e.dtype).is_quantized for e in estimates):
        console.print(
            "load peak: INT8/INT4 loaded in one step, load_model(DIR, weights=…); loading "
            "in fp32 and then compress_ peaks at the fp32 weights."
        )
    for note in first.notes:
        console.print(f"[yellow]note:[/] {note}")
