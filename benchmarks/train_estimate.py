"""memlens's training estimate vs accelerate's "Training using Adam" vs DeepSpeed's
model-states formula vs the measured peak of one training step, side by side in one run.

For each model (the trained byte-level Llama fixture and GPT-2-, Llama- and Qwen-shaped
small random configs, all fp32 on the CPU) and each mode (full fine-tuning, LoRA r8 on
peft's default targets, full with gradient checkpointing), all with AdamW:

- measured: one steady-state step (forward, backward, AdamW step) after a warm-up step,
  peak from the profiler's allocation events (``memlens.profiler.training_step``);
- memlens: ``training_estimate`` (analytic, torch-free);
- accelerate: ``estimate_training_usage(fp32 bytes, "float32")``, the figure
  ``accelerate estimate-memory`` prints as "Training using Adam" (4× the weights; no
  activations, no LoRA, no checkpointing);
- DeepSpeed: ``estimate_zero2_model_states_mem_needs`` without offload on one GPU,
  4Ψ + 16Ψ/N bytes (model states only; the formula is encoded here, DeepSpeed is not
  installed).

The error of each is (figure - measured) ÷ measured. The machine is shared: the figures are
bytes, not timings, so load does not change them.

Run: python benchmarks/train_estimate.py   (writes benchmarks/results/train_estimate.json)
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import torch
import transformers
from accelerate.commands.estimate import estimate_training_usage
from fixtures.byte_llama_model import fixture_dir, load_byte_llama
from rich.console import Console
from rich.table import Table

from memlens.profiler.training import training_estimate
from memlens.profiler.training_config import training_config
from memlens.profiler.training_step import measure_training_step
from memlens.units import format_bytes

_IDS = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
_DECODER = {
    "hidden_size": 256,
    "intermediate_size": 688,
    "num_hidden_layers": 4,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "vocab_size": 2000,
}
CONFIGS: dict[str, dict[str, Any]] = {
    "llama": {"model_type": "llama", **_IDS, **_DECODER},
    "qwen2": {"model_type": "qwen2", **_IDS, **_DECODER},
    "gpt2": {
        "model_type": "gpt2",
        **_IDS,
        "n_embd": 256,
        "n_layer": 4,
        "n_head": 8,
        "vocab_size": 2000,
        "n_positions": 512,
    },
}
MODES = {
    "full": {"train": "full"},
    "lora:r8": {"train": "lora:r8"},
    "full+ckpt": {"train": "full", "gradient_checkpointing": True},
}
BATCH, SEQ = 2, 256
RESULTS = Path(__file__).resolve().parent / "results" / "train_estimate.json"


def _cpu() -> dict[str, Any]:
    info = {"model": platform.processor(), "flags": []}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            info["model"] = value.strip()
        if key.strip() == "flags":
            wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "fma")
            info["flags"] = [flag for flag in value.split() if flag in wanted]
            break
    return info


def _model(name: str) -> tuple[Any, dict[str, Any]]:
    if name == "byte-llama":
        model, _ = load_byte_llama()
        return model, json.loads((fixture_dir() / "config.json").read_text())
    config = CONFIGS[name]
    fields = {k: v for k, v in config.items() if k != "model_type"}
    torch.manual_seed(0)
    hf = transformers.AutoConfig.for_model(config["model_type"], **fields)
    return transformers.AutoModelForCausalLM.from_config(hf), config


def _row(name: str, mode: str) -> dict[str, Any]:
    model, config = _model(name)
    params = sum(p.numel() for p in model.parameters())
    train = training_config(**MODES[mode], optimizer="adamw", batch=BATCH, seq=SEQ)
    measured = measure_training_step(model, train, config["vocab_size"]).peak_bytes
    figures = {
        "memlens": training_estimate(config, name, train).peak_bytes,
        "accelerate": max(estimate_training_usage(params * 4, "float32").values()),
        "deepspeed": 4 * params + 16 * params,
    }
    return {
        "model": name,
        "mode": mode,
        "params": params,
        "measured_bytes": measured,
        **{f"{tool}_bytes": value for tool, value in figures.items()},
        **{f"{tool}_error": value / measured - 1 for tool, value in figures.items()},
    }


def main() -> None:
    """Run every model × mode, print the table, write the JSON."""
    rows = [_row(name, mode) for name in ("byte-llama", *CONFIGS) for mode in MODES]
    table = Table(title=f"Training step peak, batch {BATCH} × {SEQ}, fp32, AdamW")
    for column in ("model", "mode", "measured", "memlens", "accelerate", "DeepSpeed"):
        table.add_column(column, justify="left" if column in ("model", "mode") else "right")
    for row in rows:
        table.add_row(
            row["model"],
            row["mode"],
            format_bytes(row["measured_bytes"]),
            *(
                f"{format_bytes(row[f'{tool}_bytes'])} ({row[f'{tool}_error']:+.0%})"
                for tool in ("memlens", "accelerate", "deepspeed")
            ),
        )
    console = Console()
    console.print(table)
    worst = {
        tool: max(abs(row[f"{tool}_error"]) for row in rows)
        for tool in ("memlens", "accelerate", "deepspeed")
    }
    console.print("largest |error|: " + ", ".join(f"{t} {e:.0%}" for t, e in worst.items()))
    cpu = _cpu()
    console.print(f"CPU: {cpu['model']} ({' '.join(cpu['flags'])}); torch {torch.__version__}")
    RESULTS.parent.mkdir(exist_ok=True)
    payload = {"cpu": cpu, "torch": torch.__version__, "rows": rows, "largest_error": worst}
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
