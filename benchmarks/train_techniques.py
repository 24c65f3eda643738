"""memlens's memory-saving fine-tuning vs its peers, side by side in one run.

Every row trains the same model on the same data (the fixture's held-out Python source:
90% to train on, the last 10% to evaluate), for the same steps, from the same seed, with
memlens's training loop (``memlens/train/loop.py``), so peak memory is measured the same
way for all: the profiler's allocation events during the second optimizer step (when the
optimizer state exists), on top of the weights and optimizer state held before it.

Rows (on the trained byte-level fixture; ``--real DIR`` adds the memory rows on a real
chat model such as SmolLM2-135M-Instruct, a few steps each):

- full fine-tuning, fp32 AdamW; + gradient checkpointing; + INT8 saved activations;
  + memlens 8-bit AdamW; + bitsandbytes 8-bit AdamW; + torchao 8-bit AdamW;
  + torchao INT4 QAT (fake-quantized eval);
- memlens LoRA r16 and peft LoRA r16 (same targets, rank, alpha);
- memlens LoRA + QAT INT4 exported to INT4 layers vs LoRA then post-training INT4, both
  compared with the LoRA model merged in bf16;
- L0 pruning at 30% and 50% target sparsity: parameters removed, eval-loss change against
  the full fine-tuning row, decode tokens/s of the pruned model.

A peer that does not run on this machine is reported as such, with the reason.
The machine may be loaded by other work: compare rows of one run, not runs.

Run: .venv/bin/python benchmarks/train_techniques.py [--steps 30] [--real DIR]
(writes benchmarks/results/train_techniques.json)
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from fixtures.byte_llama_model import FIXTURE_DIR, heldout_text, load_byte_llama
from rich.console import Console
from rich.table import Table
from torch import nn

from memlens.engine.loading import load_model
from memlens.engine.measure.speed import decode_speed
from memlens.engine.tokens import ByteCodec, TextCodec, load_codec
from memlens.engine.weights.config import Int4WeightConfig
from memlens.engine.weights.quantize import compress_
from memlens.train.data import TokenData
from memlens.train.int8_activations import Int8ActivationConfig
from memlens.train.loop import TrainConfig, TrainReport, eval_loss, train
from memlens.train.lora import LoraConfig, lora_, merge_lora_
from memlens.train.optimizers import registers
from memlens.train.pruning import PruneConfig, add_gates, parameter_count, prune
from memlens.train.qat import export_, qat_
from memlens.units import format_bytes

RESULTS = Path(__file__).parent / "results" / "train_techniques.json"
LORA = LoraConfig(r=16, alpha=32)
QAT = Int4WeightConfig(group_size=32)
FULL_LR = 3e-4
LORA_LR = 1e-3
DECODE_PROMPT = 32
DECODE_TOKENS = 32

Build = Callable[[], tuple[nn.Module, Any]]
"""A fresh model and its pruning gates (or None)."""


def _cpu() -> dict[str, Any]:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    model = next(
        (ln.split(":", 1)[1].strip() for ln in info.splitlines() if "model name" in ln), ""
    )
    flags = next(
        (ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), []
    )
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "fma")
    return {
        "model": model or platform.processor(),
        "flags": [f for f in wanted if f in flags],
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


# peers, registered beside memlens's own optimizers for this run only


def _peer_optimizers() -> dict[str, str]:
    """Register the peers' 8-bit AdamW where they import; returns {name: why not} for
    those that do not."""
    missing: dict[str, str] = {}
    try:
        import bitsandbytes as bnb

        @registers("bnb-adamw8bit")
        def _bnb(groups: list[dict[str, Any]], lr: float) -> torch.optim.Optimizer:
            return bnb.optim.AdamW8bit(groups, lr=lr, weight_decay=0.0)

    except ImportError as exc:
        missing["bnb-adamw8bit"] = f"bitsandbytes does not import: {exc}"
    try:
        from torchao.optim import AdamW8bit as TorchaoAdamW8bit

        @registers("torchao-adamw8bit")
        def _torchao(groups: list[dict[str, Any]], lr: float) -> torch.optim.Optimizer:
            return TorchaoAdamW8bit(groups, lr=lr, weight_decay=0.0)  # type: ignore[no-any-return]

    except ImportError as exc:
        missing["torchao-adamw8bit"] = f"torchao does not import: {exc}"
    return missing


def _torchao_qat(model: nn.Module) -> None:
    """torchao's INT4 weight fake quantization on the Linears whose inputs divide by the
    group (torchao refuses the others; memlens gives those INT8)."""
    from torchao.quantization import quantize_
    from torchao.quantization.qat import IntxFakeQuantizeConfig, QATConfig

    weights = IntxFakeQuantizeConfig(torch.int4, group_size=QAT.group_size, is_symmetric=False)
    quantize_(
        model,
        QATConfig(weight_config=weights, step="prepare"),
        filter_fn=lambda m, _: isinstance(m, nn.Linear) and m.in_features % QAT.group_size == 0,
    )


def _peft_lora(model: nn.Module) -> nn.Module:
    import peft

    config = peft.LoraConfig(
        r=LORA.r, lora_alpha=int(LORA.alpha), target_modules=list(LORA.targets), lora_dropout=0.0
    )
    return peft.get_peft_model(model, config)  # type: ignore[no-any-return]


# one row


def _row(
    name: str,
    build: Build,
    data: TokenData,
    config: TrainConfig,
    after: Callable[[nn.Module, Any], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    torch.manual_seed(config.seed)
    try:
        model, gates = build()
        started = time.perf_counter()
        report: TrainReport = train(model, data, config, gates)
        row = {"name": name, "ran": True, **report.to_json(), "seconds": 0.0}
        if after is not None:
            row.update(after(model, gates))
        row["seconds"] = time.perf_counter() - started
        return row
    except Exception as exc:  # a peer that fails on this machine is reported, not fatal
        return {"name": name, "ran": False, "why": f"{type(exc).__name__}: {exc}"[:300]}


def _decode_tokens_per_s(model: nn.Module) -> float:
    return float(decode_speed(model.eval(), DECODE_PROMPT, DECODE_TOKENS, repeats=1)[1])


def _fixture_rows(steps: int, skip_peers: dict[str, str]) -> list[dict[str, Any]]:
    data = TokenData.from_text(heldout_text(), ByteCodec(), seq_len=128)

    def fixture() -> tuple[nn.Module, Any]:
        return load_byte_llama()[0], None

    def with_lora() -> tuple[nn.Module, Any]:
        return lora_(load_byte_llama()[0], LORA), None

    def full(**changes: Any) -> TrainConfig:
        return TrainConfig(steps=steps, lr=FULL_LR, **changes)

    lora_cfg = TrainConfig(steps=steps, lr=LORA_LR)
    rows = [
        _row("full fp32 AdamW", fixture, data, full(), _decode_after),
        _row("+ gradient checkpointing", fixture, data, full(grad_checkpointing=True)),
        _row("+ INT8 activations", fixture, data, full(int8_activations=Int8ActivationConfig())),
        _row("+ memlens 8-bit AdamW", fixture, data, full(optimizer="adamw8bit")),
    ]
    for peer, label in (("bnb-adamw8bit", "bitsandbytes"), ("torchao-adamw8bit", "torchao")):
        if peer in skip_peers:
            rows.append({"name": f"+ {label} 8-bit AdamW", "ran": False, "why": skip_peers[peer]})
        else:
            rows.append(_row(f"+ {label} 8-bit AdamW", fixture, data, full(optimizer=peer)))

    def torchao_qat() -> tuple[nn.Module, Any]:
        model = load_byte_llama()[0]
        _torchao_qat(model)
        return model, None

    rows.append(_row("+ torchao INT4 QAT (fake-quant eval)", torchao_qat, data, full()))
    rows.append(_row("memlens LoRA r16", with_lora, data, lora_cfg, _lora_after(data)))
    rows.append(
        _row("peft LoRA r16", lambda: (_peft_lora(load_byte_llama()[0]), None), data, lora_cfg)
    )

    def lora_qat() -> tuple[nn.Module, Any]:
        return qat_(lora_(load_byte_llama()[0], LORA), QAT), None

    rows.append(_row("memlens LoRA + QAT INT4", lora_qat, data, lora_cfg, _export_after(data)))
    for sparsity in (0.3, 0.5):

        def gated(sparsity: float = sparsity) -> tuple[nn.Module, Any]:
            model = load_byte_llama()[0]
            return model, add_gates(model, PruneConfig(sparsity))

        rows.append(_row(f"L0 pruning {sparsity:.0%}", gated, data, full(), _prune_after(data)))
    return rows


def _decode_after(model: nn.Module, gates: Any) -> dict[str, Any]:
    return {
        "parameters_after": parameter_count(model),
        "decode_tokens_per_s": _decode_tokens_per_s(model),
    }


def _lora_after(data: TokenData) -> Callable[[nn.Module, Any], dict[str, Any]]:
    def after(model: nn.Module, gates: Any) -> dict[str, Any]:
        merged = merge_lora_(model)
        bf16 = copy.deepcopy(merged).to(torch.bfloat16)
        ptq = compress_(copy.deepcopy(merged), QAT)
        return {"eval_loss_bf16": eval_loss(bf16, data), "eval_loss_ptq_int4": eval_loss(ptq, data)}

    return after


def _export_after(data: TokenData) -> Callable[[nn.Module, Any], dict[str, Any]]:
    def after(model: nn.Module, gates: Any) -> dict[str, Any]:
        return {"eval_loss_exported_int4": eval_loss(export_(model), data)}

    return after


def _prune_after(data: TokenData) -> Callable[[nn.Module, Any], dict[str, Any]]:
    def after(model: nn.Module, gates: Any) -> dict[str, Any]:
        before = parameter_count(model)
        with gates.opened():  # the trained model, nothing removed
            dense = eval_loss(model, data)
        pruned = prune(model, gates)
        return {
            "eval_loss_dense": dense,
            "eval_loss_after": eval_loss(pruned, data),
            "parameters_after": parameter_count(pruned),
            "parameters_removed": 1 - parameter_count(pruned) / before,
            "decode_tokens_per_s": _decode_tokens_per_s(pruned),
            "config": {
                "num_attention_heads": pruned.config.num_attention_heads,  # type: ignore[union-attr]
                "intermediate_size": pruned.config.intermediate_size,  # type: ignore[union-attr]
            },
        }

    return after


def _real_rows(folder: Path, steps: int) -> list[dict[str, Any]]:
    codec: TextCodec = load_codec(folder)
    data = TokenData.from_text(heldout_text(), codec, seq_len=128)

    def real() -> tuple[nn.Module, Any]:
        return load_model(folder, torch.float32).model, None

    def real_lora() -> tuple[nn.Module, Any]:
        return lora_(real()[0], LORA), None

    def full(**changes: Any) -> TrainConfig:
        return TrainConfig(steps=steps, lr=FULL_LR / 10, batch_size=2, **changes)

    lora_cfg = TrainConfig(steps=steps, lr=LORA_LR / 5, batch_size=2)
    return [
        _row("real: full fp32 AdamW", real, data, full()),
        _row("real: + gradient checkpointing", real, data, full(grad_checkpointing=True)),
        _row("real: + INT8 activations", real, data, full(int8_activations=Int8ActivationConfig())),
        _row("real: + memlens 8-bit AdamW", real, data, full(optimizer="adamw8bit")),
        _row("real: memlens LoRA r16", real_lora, data, lora_cfg),
        _row("real: peft LoRA r16", lambda: (_peft_lora(real()[0]), None), data, lora_cfg),
    ]


# goals and output


def _by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in rows if row.get("ran")}


def _relative(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def _goals(rows: list[dict[str, Any]], prefix: str = "") -> dict[str, Any]:
    r = _by_name(rows)
    full = r.get(prefix + "full fp32 AdamW")
    goals: dict[str, Any] = {}
    if full is None:
        return goals
    if (act := r.get(prefix + "+ INT8 activations")) is not None:
        goals["activation_bytes_ratio"] = full["activation_bytes_full"] / act["activation_bytes"]
        goals["int8_activations_eval_loss_change"] = _relative(
            act["eval_loss_after"], full["eval_loss_after"]
        )
    if (opt := r.get(prefix + "+ memlens 8-bit AdamW")) is not None:
        goals["optimizer_bytes_ratio"] = full["optimizer_bytes"] / opt["optimizer_bytes"]
        goals["adamw8bit_eval_loss_change"] = _relative(
            opt["eval_loss_after"], full["eval_loss_after"]
        )
    ours, peft = r.get(prefix + "memlens LoRA r16"), r.get(prefix + "peft LoRA r16")
    if ours is not None and peft is not None:
        goals["lora_trainable_vs_peft"] = (
            ours["trainable_parameters"] / peft["trainable_parameters"]
        )
        goals["lora_peak_vs_peft"] = ours["peak_step_bytes"] / peft["peak_step_bytes"]
    qat = r.get(prefix + "memlens LoRA + QAT INT4")
    if ours is not None and qat is not None and "eval_loss_bf16" in ours:
        reference = ours["eval_loss_bf16"]
        goals["qat_int4_distance_to_bf16_lora"] = abs(qat["eval_loss_exported_int4"] - reference)
        goals["ptq_int4_distance_to_bf16_lora"] = abs(ours["eval_loss_ptq_int4"] - reference)
    return goals


def _print(console: Console, rows: list[dict[str, Any]]) -> None:
    table = Table(title="training techniques (one run)", title_justify="left")
    for column in (
        "row",
        "peak (1 step)",
        "grads",
        "optimizer",
        "saved act.",
        "trainable",
        "eval loss",
        "tokens/s",
        "note",
    ):
        table.add_column(column, justify="left" if column in ("row", "note") else "right")
    for row in rows:
        if not row.get("ran"):
            table.add_row(row["name"], *["–"] * 7, f"did not run: {row['why'][:60]}")
            continue
        notes = []
        for key in (
            "eval_loss_bf16",
            "eval_loss_ptq_int4",
            "eval_loss_exported_int4",
            "eval_loss_dense",
        ):
            if key in row:
                notes.append(f"{key.removeprefix('eval_loss_')} {row[key]:.4f}")
        if "parameters_removed" in row:
            notes.append(f"removed {row['parameters_removed']:.1%} params, {row['config']}")
        if "decode_tokens_per_s" in row:
            notes.append(f"decode {row['decode_tokens_per_s']:.0f} tok/s")
        table.add_row(
            row["name"],
            format_bytes(row["peak_step_bytes"]),
            format_bytes(row["gradient_bytes"]),
            format_bytes(row["optimizer_bytes"]),
            format_bytes(row["activation_bytes"]),
            f"{row['trainable_parameters']:,}",
            f"{row['eval_loss_before']:.4f} → {row['eval_loss_after']:.4f}",
            f"{row['tokens_per_s']:.0f}",
            "; ".join(notes),
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per fixture row")
    parser.add_argument("--real", type=Path, help="a real chat model folder for the memory rows")
    parser.add_argument("--real-steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    console = Console(width=220)
    missing = _peer_optimizers()
    rows = _fixture_rows(args.steps, missing)
    real_rows = _real_rows(args.real, args.real_steps) if args.real else []
    result = {
        "cpu": _cpu(),
        "fixture": str(FIXTURE_DIR),
        "steps": args.steps,
        "real_model": None if args.real is None else str(args.real),
        "real_steps": args.real_steps,
        "note": "one run on a shared machine: compare rows of this run, not runs",
        "rows": rows,
        "real_rows": real_rows,
        "goals": _goals(rows),
        "real_goals": _goals(real_rows, "real: "),
    }
    _print(console, rows + real_rows)
    console.print_json(
        json.dumps(
            {"cpu": result["cpu"], "goals": result["goals"], "real_goals": result["real_goals"]}
        )
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
