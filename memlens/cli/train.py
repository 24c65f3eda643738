"""``memlens train MODEL_DIR --data FILE …``: memory-saving fine-tuning (LoRA, QAT, INT8
saved activations, 8-bit optimizer states, L0 pruning), with a progress bar and a final
report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from memlens.errors import UsageError
from memlens.units import format_bytes

if TYPE_CHECKING:
    from memlens.train.lora import LoraConfig
    from memlens.train.run import TrainResult

NAME = "train"
HELP = "fine-tune a local model with LoRA, QAT, INT8 activations, 8-bit AdamW or pruning"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``memlens train``."""
    parser.add_argument("model", metavar="MODEL_DIR", help="model folder or memlens checkpoint")
    parser.add_argument("--data", type=Path, required=True, help="UTF-8 text file to train on")
    parser.add_argument("--out", type=Path, help="new folder for the trained model")
    parser.add_argument("--lora", metavar="rR[:aALPHA]", help="LoRA adapters, e.g. r16 or r8:a16")
    parser.add_argument("--qat", metavar="SCHEME", help="train for int8 or int4[:g32|g64|g128]")
    parser.add_argument(
        "--int8-activations", action="store_true", help="store saved activations in INT8"
    )
    parser.add_argument(
        "--optimizer",
        default="adamw",
        help="adamw, adamw8bit or adamw-offload (CUDA only) (default: %(default)s)",
    )
    parser.add_argument("--prune", type=float, metavar="SPARSITY", help="L0 pruning target")
    parser.add_argument("--grad-checkpointing", action="store_true", help="recompute blocks")
    parser.add_argument("--steps", type=int, default=100, help="optimizer steps")
    parser.add_argument("--lr", type=float, help="learning rate (default 1e-3 LoRA, else 1e-4)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per window")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def parse_lora(text: str) -> LoraConfig:
    """``--lora r16`` or ``r16:a32`` (alpha defaults to twice the rank)."""
    from memlens.train.lora import LoraConfig

    rank_text, _, alpha_text = text.strip().lower().partition(":")
    try:
        rank = int(rank_text.removeprefix("r"))
        alpha = float(alpha_text.removeprefix("a")) if alpha_text else 2.0 * rank
    except ValueError:
        raise UsageError(f"--lora {text!r}: use rRANK[:aALPHA], e.g. r16 or r8:a16") from None
    return LoraConfig(r=rank, alpha=alpha)


def run(args: argparse.Namespace) -> int:
    """Train, draw progress, print the report."""
    from memlens.engine.weights.config import parse_weights
    from memlens.train.int8_activations import Int8ActivationConfig
    from memlens.train.loop import StepStats, TrainConfig
    from memlens.train.pruning import PruneConfig
    from memlens.train.run import TrainJob, run_train

    lora = parse_lora(args.lora) if args.lora else None
    job = TrainJob(
        source=Path(args.model),
        data=args.data,
        out=args.out,
        lora=lora,
        qat=parse_weights(args.qat) if args.qat else None,
        prune=PruneConfig(sparsity=args.prune) if args.prune is not None else None,
        train=TrainConfig(
            steps=args.steps,
            lr=args.lr if args.lr is not None else (1e-3 if lora else 1e-4),
            batch_size=args.batch_size,
            seq_len=args.seq_len,
            seed=args.seed,
            optimizer=args.optimizer,
            grad_checkpointing=args.grad_checkpointing,
            int8_activations=Int8ActivationConfig() if args.int8_activations else None,
        ),
    )
    with Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("loading", total=args.steps)

        def on_step(stats: StepStats) -> None:
            bar.update(
                task,
                completed=stats.step,
                description=f"loss {stats.loss:.3f} · {stats.tokens_per_s:.0f} tokens/s · "
                f"peak {format_bytes(stats.peak_bytes)}",
            )

        result = run_train(job, on_step)
    if args.json:
        json.dump(result.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render(result, Console())
    return 0


def render(result: TrainResult, console: Console) -> None:
    """The final report."""
    report = result.report
    share = report.trainable_parameters / max(report.parameters, 1)
    console.print(
        f"trained {report.steps} steps: eval loss {report.eval_loss_before:.4f} → "
        f"[bold]{report.eval_loss_after:.4f}[/] · {report.tokens_per_s:.0f} tokens/s"
    )
    console.print(
        f"trainable parameters {report.trainable_parameters:,} of {report.parameters:,} "
        f"({share:.2%})"
    )
    console.print(
        f"peak of one step {format_bytes(report.peak_step_bytes)} · weights "
        f"{format_bytes(report.parameter_bytes)} · gradients {format_bytes(report.gradient_bytes)}"
        f" · optimizer {format_bytes(report.optimizer_bytes)} · saved activations "
        f"{format_bytes(report.activation_bytes)} (of {format_bytes(report.activation_bytes_full)})"
    )
    if report.gate_sparsity is not None:
        console.print(
            f"pruning: gates expect {report.gate_sparsity:.1%} off; parameters "
            f"{report.parameters:,} → {result.parameters_after:,}; config {result.config_changes}"
        )
    if result.out:
        console.print(f"saved ({result.saved_as}) to {result.out}")
