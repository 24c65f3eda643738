"""``memlens compress MODEL --weights … --out DIR``: compress a local model and report
what it saved (bytes per layer) and cost (per-layer error, perplexity, tokens/s)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.table import Table

from memlens.cli.output import stdout_console
from memlens.cli.progress import progress_bar
from memlens.errors import UsageError
from memlens.profiler.layer_groups import format_indices
from memlens.profiler.tensors import StorageDtype
from memlens.units import format_bytes, parse_size

if TYPE_CHECKING:
    from memlens.engine.compress_job import CompressionReport
    from memlens.engine.weights.config import WeightConfig
    from memlens.engine.weights.sensitivity import LayerChoice

NAME = "compress"
HELP = "compress a local model's weights (INT8, INT4, low-rank or auto) and measure the cost"
_DTYPES = (StorageDtype.BF16, StorageDtype.FP32)
"""The dtypes ``--dtype`` offers for the uncompressed model (fp16 is not one)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``memlens compress``."""
    parser.add_argument("model", metavar="MODEL", help="folder with config.json, *.safetensors")
    parser.add_argument(
        "--weights",
        default="int8",
        help="int8, int4[:g32|g64|g128], lowrank[:ENERGY] or auto (default: %(default)s)",
    )
    parser.add_argument(
        "--max-error",
        type=float,
        help="auto: relative output error allowed per layer (default 0.02)",
    )
    parser.add_argument("--budget", help="auto: bytes all weights may take, e.g. 2GiB")
    parser.add_argument("--out", type=Path, help="write the compressed checkpoint here")
    parser.add_argument("--calibration", type=Path, help="calibration text file")
    parser.add_argument("--eval-text", type=Path, help="held-out text file for perplexity")
    parser.add_argument(
        "--dtype",
        choices=[dtype.value for dtype in _DTYPES],
        default=StorageDtype.BF16.value,
        help="dtype of the uncompressed model",
    )
    parser.add_argument("--no-speed", action="store_true", help="skip the tokens/s measurement")
    parser.add_argument(
        "--per-layer",
        action="store_true",
        help="one row per Linear (default: identical layers grouped, with their max error)",
    )
    parser.add_argument("--json", action="store_true", help="print the CompressionReport JSON")


def weights_config(args: argparse.Namespace) -> WeightConfig:
    """``--weights`` with auto's ``--max-error``/``--budget`` applied."""
    from memlens.engine.weights.config import AutoWeightConfig, parse_weights

    config = parse_weights(args.weights)
    tuning = args.max_error is not None or args.budget is not None
    if tuning and not isinstance(config, AutoWeightConfig):
        raise UsageError("--max-error and --budget apply to --weights auto")
    if isinstance(config, AutoWeightConfig) and tuning:
        budget = parse_size(args.budget, "--budget") if args.budget is not None else None
        max_error = args.max_error if args.max_error is not None else config.max_error
        config = AutoWeightConfig(max_error=max_error, budget_bytes=budget)
    return config


def run(args: argparse.Namespace) -> int:
    """Compress, print the report, write the checkpoint."""
    import torch  # the engine loads only for this command, not for every `memlens` call

    from memlens.engine.compress_job import CompressJob, run_compress
    from memlens.engine.measure.texts import read_text

    out: Path | None = args.out
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out {out} exists and is not an empty folder")
    job = CompressJob(
        source=Path(args.model),
        weights=weights_config(args),
        out=args.out,
        calibration=read_text(args.calibration) if args.calibration else None,
        evaluation=read_text(args.eval_text) if args.eval_text else None,
        measure_speed=not args.no_speed,
        dtype=getattr(torch, StorageDtype(args.dtype).torch_name),
    )
    with progress_bar(f"compress {job.weights.label()}") as update:
        report = run_compress(job, update)
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        console = stdout_console()
        render(report, console, per_layer=args.per_layer)
    return 0


def _float(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


_INDEXED = re.compile(r"^(?P<prefix>.*?\.)(?P<index>\d+)\.(?P<rest>.+)$")
"""``model.layers.12.mlp.down_proj`` → ``model.layers.``, 12, ``mlp.down_proj``."""


@dataclass(frozen=True)
class LayerRow:
    """One row of the layers table: ``count`` layers like ``layer``."""

    label: str
    """``model.layers.0–29 ×30 · mlp.down_proj``, or one layer's name."""
    count: int
    layer: LayerChoice
    """One representative: its scheme and per-layer bytes."""
    max_error: float | None
    """The largest relative error among them (None: none ran on the calibration text)."""


def group_choices(layers: tuple[LayerChoice, ...]) -> list[LayerRow]:
    """Layers ``prefix.N.rest`` with the same prefix, rest, scheme and bytes on one row
    (``model.layers.0–29 ×30 · mlp.down_proj``, as ``memlens estimate`` groups blocks),
    in order of first appearance; others keep a row each."""
    groups: dict[tuple[object, ...], tuple[str, str, list[int], list[LayerChoice]]] = {}
    for layer in layers:
        match = _INDEXED.match(layer.name)
        if match is None:
            groups[(layer.name,)] = (layer.name, "", [], [layer])
            continue
        key = (match["prefix"], match["rest"], layer.scheme, layer.bytes_before, layer.bytes_after)
        _, _, indices, members = groups.setdefault(key, (match["prefix"], match["rest"], [], []))
        indices.append(int(match["index"]))
        members.append(layer)
    rows = []
    for prefix, rest, indices, members in groups.values():
        if len(members) == 1:
            label = members[0].name
        else:
            label = f"{prefix}{format_indices(indices)} ×{len(members)} · {rest}"
        errors = [m.rel_error for m in members if m.rel_error is not None]
        rows.append(LayerRow(label, len(members), members[0], max(errors, default=None)))
    return rows


def render(report: CompressionReport, console: Console, per_layer: bool = False) -> None:
    """The layers table (identical layers on one row unless ``per_layer``), then the
    totals."""
    layers = Table(title="Layers", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    error = "rel. error" if per_layer else "max rel. error"
    for column in ("layer", "scheme", "before", "after", error):
        layers.add_column(
            column, justify="left" if column in ("layer", "scheme") else "right", no_wrap=True
        )
    groups = (
        [LayerRow(layer.name, 1, layer, layer.rel_error) for layer in report.layers]
        if per_layer
        else group_choices(report.layers)
    )
    for group in groups:
        layer = group.layer
        layers.add_row(
            group.label,
            layer.scheme,
            format_bytes(layer.bytes_before * group.count),
            format_bytes(layer.bytes_after * group.count),
            "–" if group.max_error is None else f"{group.max_error:.2%}",
        )
    console.print(layers)
    ratio = report.weight_bytes_after / max(report.weight_bytes_before, 1)
    console.print(
        f"weights {format_bytes(report.weight_bytes_before)} → "
        f"[bold]{format_bytes(report.weight_bytes_after)}[/] ({ratio:.2f}×)"
    )
    if report.ppl_before is not None:
        delta = report.ppl_delta or 0.0
        console.print(
            f"perplexity {_float(report.ppl_before)} → {_float(report.ppl_after)} ({delta:+.2%}) "
            f"on {report.evaluation_tokens:,} tokens of held-out text"
        )
    if report.embedding_cosine is not None:
        console.print(f"embedding cosine vs uncompressed {report.embedding_cosine:.4f}")
    if report.tokens_per_s_before is not None:
        console.print(
            f"decode {_float(report.tokens_per_s_before, 1)} → "
            f"{_float(report.tokens_per_s_after, 1)} tokens/s (batch 1, "
            f"{report.speed_tokens[1]} tokens after a {report.speed_tokens[0]}-token prompt)"
        )
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}")
    if report.out:
        console.print(f"saved to {report.out}")
