"""``memlens bench``: decode and prefill tokens/s, weight bytes and the read-bandwidth
floor of memlens's weight schemes on one model (a local folder, or random weights in the
shape of a known config). ``benchmarks/engine_weights.py`` adds the other libraries."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.table import Table

from memlens.cli.output import stdout_console
from memlens.cli.progress import progress_bar
from memlens.errors import UsageError
from memlens.profiler.configs import resolve_config
from memlens.units import format_bytes

if TYPE_CHECKING:
    from memlens.engine.measure.speed import SpeedResult

NAME = "bench"
HELP = "decode speed, weight bytes and the bandwidth floor of each weight scheme"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``memlens bench``."""
    parser.add_argument(
        "model",
        metavar="MODEL",
        nargs="?",
        default="TinyLlama/TinyLlama-1.1B-Chat-v1.0",
        help="a local model folder, or a known model id whose shape gets random weights "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--weights",
        default="bf16,int8,int4:g64",
        help="comma-separated: bf16 (uncompressed), int8, int4[:gN], lowrank[:E] "
        "(default: %(default)s)",
    )
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def run(args: argparse.Namespace) -> int:
    """Measure each scheme on a fresh copy of the model."""
    from memlens.engine.loading import load_model, random_model
    from memlens.engine.measure.speed import measure_speed, read_bandwidth
    from memlens.engine.weights.config import AutoWeightConfig, parse_weights
    from memlens.engine.weights.quantize import compress_

    schemes = [s.strip() for s in args.weights.split(",") if s.strip()]
    configs = {s: None if s == "bf16" else parse_weights(s) for s in schemes}
    if any(isinstance(c, AutoWeightConfig) for c in configs.values()):
        raise UsageError("bench measures fixed schemes; run `memlens compress --weights auto`")
    if not 1 <= args.prompt_tokens <= 8192 or not 2 <= args.new_tokens <= 4096:
        raise UsageError("--prompt-tokens must be 1–8192 and --new-tokens 2–4096")
    folder = Path(args.model)
    results: list[SpeedResult] = []
    with progress_bar("bench") as update:
        update("Measuring read bandwidth", 1)
        bandwidth = read_bandwidth()
        for done, (label, config) in enumerate(configs.items()):
            update(f"{label}: building the model", 100 * done / len(configs))
            if folder.is_dir():
                model = load_model(folder).model
            else:
                model = random_model(resolve_config(args.model, allow_network=False).config)
            if config is not None:
                compress_(model, config)
            update(f"{label}: decoding", 100 * (done + 0.5) / len(configs))
            results.append(
                measure_speed(model, label, bandwidth, args.prompt_tokens, args.new_tokens)
            )
            del model
    if args.json:
        payload = {"model": args.model, "bandwidth_bytes_per_s": bandwidth}
        json.dump({**payload, "results": [r.to_json() for r in results]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render(args.model, bandwidth, results, stdout_console())
    return 0


def render(model: str, bandwidth: float, results: list[SpeedResult], console: Console) -> None:
    """One row per scheme."""
    table = Table(
        title=f"{model} at batch 1 (read bandwidth {format_bytes(int(bandwidth))}/s)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for column in ("scheme", "weights", "prefill tok/s", "decode tok/s", "floor tok/s", "÷ floor"):
        table.add_column(column, justify="left" if column == "scheme" else "right")
    for r in results:
        table.add_row(
            r.label,
            format_bytes(r.weight_bytes),
            f"{r.prefill_tokens_per_s:.1f}",
            f"{r.decode_tokens_per_s:.2f}",
            f"{r.floor_tokens_per_s:.2f}",
            f"{r.floor_ratio:.2f}×",
        )
    console.print(table)
