"""``memlens profile MODEL``: measured memory of a real load and a short generation, per
block, beside the static estimate."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rich import box
from rich.console import Console
from rich.table import Table

from memlens.cli.output import stdout_console
from memlens.cli.progress import progress_bar
from memlens.cli.training_options import add_training_arguments, config_from_args
from memlens.errors import UsageError
from memlens.profiler.tensors import FLOAT_DTYPES, StorageDtype
from memlens.units import format_bytes, format_count

if TYPE_CHECKING:
    from memlens.engine.measure.profile_run import ProfileRun

NAME = "profile"
HELP = (
    "measure a local model's memory per block during a short generation, or one "
    "training step with --train"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``memlens profile``."""
    parser.add_argument("model", metavar="MODEL", help="model folder or compressed checkpoint")
    parser.add_argument(
        "--dtype",
        choices=[dtype.value for dtype in FLOAT_DTYPES],
        default=StorageDtype.BF16.value,
        help="load dtype",
    )
    parser.add_argument("--prompt-tokens", type=int, default=64, help="(default: %(default)s)")
    parser.add_argument("--new-tokens", type=int, default=8, help="(default: %(default)s)")
    parser.add_argument("--batch", type=int, default=1, help="(default: %(default)s)")
    parser.add_argument(
        "--kv",
        metavar="SPEC",
        help="decode with memlens's compressed KV cache, e.g. int8, int4:g32:r128, "
        "int8,sinks:4+window:508 (default: transformers' DynamicCache)",
    )
    parser.add_argument("--json", action="store_true", help="print the measurement as JSON")
    add_training_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Load, run, print."""
    import torch

    from memlens.engine.kv.config import parse_kv
    from memlens.engine.loading import load_model
    from memlens.engine.measure.profile_run import profile_run

    if args.train is not None:
        return _train_run(args)
    kv = None if args.kv is None else parse_kv(args.kv)
    for name in ("prompt_tokens", "new_tokens", "batch"):
        if not 1 <= getattr(args, name) <= 1 << 16:
            raise UsageError(f"--{name.replace('_', '-')} must be between 1 and 65536")
    with progress_bar("profile") as update:
        update(f"Loading {args.model}", 5)
        loaded = load_model(Path(args.model), getattr(torch, StorageDtype(args.dtype).torch_name))
        measured = profile_run(
            loaded, args.batch, args.prompt_tokens, args.new_tokens, update, kv=kv
        )
    if args.json:
        json.dump({"model": args.model, **measured.to_json()}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render(args.model, measured, stdout_console())
    return 0


def _train_run(args: argparse.Namespace) -> int:
    """One measured training step beside the analytic estimate."""
    import torch

    from memlens.engine.loading import load_model
    from memlens.profiler.training import training_estimate
    from memlens.profiler.training_step import measure_training_step

    config = config_from_args(args)
    if args.kv is not None:
        raise UsageError("--kv applies to generation; a training step keeps no KV cache")
    with progress_bar("profile --train") as update:
        update(f"Loading {args.model}", 5)
        loaded = load_model(Path(args.model), torch.float32)
        hf_config: dict[str, Any] = cast(Any, loaded.model).config.to_dict()
        estimate = training_estimate(hf_config, args.model, config)
        measured = measure_training_step(loaded.model, config, int(hf_config["vocab_size"]), update)
    if args.json:
        report = {
            "kind": "training-profile",
            "model": args.model,
            "estimate": estimate.to_json(),
            "measured": measured.to_json(),
        }
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    table = Table(
        title=f"{args.model}: one training step ({config.describe()})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for column in ("", "estimated", "measured"):
        table.add_column(column, justify="left" if not column else "right")
    rows = (
        ("trainable parameters", estimate.trainable_params, measured.trainable_params, False),
        ("weights + adapters", estimate.weight_bytes + estimate.adapter_bytes,
         measured.weight_bytes, True),
        ("gradients", estimate.gradient_bytes, measured.gradient_bytes, True),
        ("optimizer states", estimate.optimizer_bytes, measured.optimizer_bytes, True),
        ("saved activations", estimate.activation_bytes, measured.activation_bytes, True),
        ("step peak", estimate.peak_bytes, measured.peak_bytes, True),
    )  # fmt: skip
    for name, predicted, actual, is_bytes in rows:
        show = format_bytes if is_bytes else format_count
        table.add_row(name, show(predicted), show(actual))
    stdout_console().print(table)
    return 0


def render(model: str, measured: ProfileRun, console: Console) -> None:
    """One row per block, then the run's totals."""
    table = Table(title=f"{model}: measured per block", title_justify="left", box=box.SIMPLE_HEAD)
    kv_title = "KV cache" if measured.kv_cache is None else f"KV cache ({measured.kv_cache})"
    for column in ("block", "params", "weights", kv_title, "largest output"):
        table.add_column(column, justify="left" if column == "block" else "right")
    for layer in measured.layers:
        table.add_row(
            layer.name,
            format_count(layer.params),
            format_bytes(layer.bytes),
            format_bytes(layer.kv_cache_bytes),
            format_bytes(layer.activation_bytes),
        )
    console.print(table)
    speed = measured.decode_tokens_per_s
    console.print(
        f"weights {format_bytes(measured.weights_bytes)} · peak "
        f"[bold]{format_bytes(measured.peak_bytes)}[/] on {measured.device} · "
        f"batch {measured.batch} × {measured.prompt_tokens} prompt + "
        f"{measured.new_tokens} new tokens" + (f" · decode {speed:.1f} tokens/s" if speed else "")
    )
