"""Peak memory of loading a model compressed: load whole then ``compress_``, vs memlens's
one-step load (``load_model(DIR, weights=config)``, compressing shard by shard).

Each variant runs in a fresh subprocess that imports torch, transformers and memlens
first and takes its resident size then as the base; the figures are the peak resident
size above that base while loading (``VmHWM``, reset once the imports are done), the
resident size above it once loaded (resting), and the compressed model's bytes. The goal
(issue 14): the one-step peak is at most (compressed bytes + the largest shard) × 1.1.

Models:

- ``smollm2``: fixture 3, SmolLM2-135M-Instruct (one float32 shard of 513 MiB; build it
  with ``make smollm2-fixture``); its weights lie on a Q4_1 grid of groups of 32, so
  INT4 g32 keeps its quality where g64 does not (quality is not measured here);
- ``tinyllama``: a TinyLlama-1.1B-shaped checkpoint with random bf16 weights, written
  shard by shard (``--shard-mib``, default 512) into a temporary folder.

Run: python benchmarks/engine_load.py [--models smollm2,tinyllama] [--schemes int8,int4:g64]
(writes benchmarks/results/engine_load.json; the machine is shared, so compare variants
within one run)
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "engine_load.json"
TINYLLAMA = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "num_hidden_layers": 22,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "vocab_size": 32000,
    "max_position_embeddings": 2048,
    "torch_dtype": "bfloat16",
}
VARIANTS = ("load, then compress_", "one-step load")


def _child(variant: str, folder: str, scheme: str) -> dict[str, Any]:
    """Runs in the subprocess: load one way, report resident sizes in bytes."""
    import psutil
    import torch
    import transformers

    import memlens.engine.load_compressing  # noqa: F401 - imported before the base
    from memlens.engine.loading import load_model
    from memlens.engine.weights.config import parse_weights
    from memlens.engine.weights.quantize import compress_
    from memlens.profiler.measure import module_bytes

    transformers.AutoModelForCausalLM  # noqa: B018 - resolve the lazy import first
    config = parse_weights(scheme)
    base = psutil.Process().memory_info().rss
    # ru_maxrss would carry the parent's size over the exec: reset the peak (VmHWM) instead
    Path("/proc/self/clear_refs").write_text("5")
    start = time.perf_counter()
    if variant == VARIANTS[0]:
        model = compress_(load_model(folder, torch.bfloat16).model, config)
    else:
        model = load_model(folder, torch.bfloat16, weights=config).model
    seconds = time.perf_counter() - start
    peak = _peak_rss()
    return {
        "peak_bytes": peak - base,
        "resting_bytes": psutil.Process().memory_info().rss - base,
        "compressed_bytes": module_bytes(model),
        "seconds": seconds,
    }


def _peak_rss() -> int:
    """The process's peak resident size in bytes since the last reset (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status (this benchmark needs Linux)")


def _run_variant(variant: str, folder: Path, scheme: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", variant, str(folder), scheme],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def write_random_checkpoint(folder: Path, config: dict[str, Any], shard_bytes: int) -> None:
    """A random bf16 checkpoint of ``config``'s shape in shards of about ``shard_bytes``,
    never holding more than one shard (the names come from a meta-device model)."""
    import torch
    from safetensors.torch import save_file

    from memlens.profiler.meta import build_meta_model

    shapes = {n: tuple(p.shape) for n, p in build_meta_model(config).state_dict().items()}
    generator = torch.Generator().manual_seed(0)
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    index: dict[str, str] = {}

    def flush() -> None:
        name = f"model-{len(set(index.values())) + 1:05d}.safetensors"
        save_file(shards[-1], str(folder / name))
        index.update(dict.fromkeys(shards[-1], name))
        shards[-1] = {}

    for name, shape in shapes.items():
        if "rotary" in name:
            continue
        tensor = torch.empty(shape, dtype=torch.bfloat16)
        if tensor.dim() == 1:
            tensor.fill_(1.0)
        else:
            tensor.normal_(0.0, 0.02, generator=generator)
        if size and size + tensor.numel() * 2 > shard_bytes:
            flush()
            size = 0
        shards[-1][name] = tensor
        size += tensor.numel() * 2
    flush()
    (folder / "config.json").write_text(json.dumps(config))
    total = sum((folder / name).stat().st_size for name in set(index.values()))
    index_json = {"metadata": {"total_size": total}, "weight_map": index}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index_json))


def _cpu() -> dict[str, Any]:
    info: dict[str, Any] = {"machine": platform.machine(), "python": platform.python_version()}
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return info
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            info["model"] = value.strip()
        elif key.strip() == "flags":
            info["flags"] = value.split()
            break
    return info


def _mib(value: float) -> str:
    return f"{value / 2**20:,.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="smollm2,tinyllama")
    parser.add_argument("--schemes", default="int8,int4:g64")
    parser.add_argument("--shard-mib", type=int, default=512)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="memlens-load-") as scratch:
        folders: dict[str, Path] = {}
        for model in args.models.split(","):
            if model == "smollm2":
                sys.path.insert(0, str(Path(__file__).parent))
                from fixtures.smollm2 import MAKE_TARGET, fixture_dir, is_built

                if not is_built():
                    raise SystemExit(f"fixture 3 is missing: run {MAKE_TARGET}")
                folders[model] = fixture_dir()
            elif model == "tinyllama":
                folders[model] = Path(scratch) / "tinyllama"
                folders[model].mkdir()
                print("writing the random TinyLlama-shaped checkpoint …", flush=True)
                write_random_checkpoint(folders[model], TINYLLAMA, args.shard_mib * 2**20)
            else:
                raise SystemExit(f"unknown model {model}: use smollm2, tinyllama")
        for model, folder in folders.items():
            shard = max(p.stat().st_size for p in folder.glob("*.safetensors"))
            shards = len(list(folder.glob("*.safetensors")))
            for scheme in args.schemes.split(","):
                for variant in VARIANTS:
                    print(f"{model} {scheme}: {variant} …", flush=True)
                    row = {"model": model, "scheme": scheme, "variant": variant}
                    row |= {"largest_shard_bytes": shard, "shards": shards}
                    row |= _run_variant(variant, folder, scheme)
                    if "peak_bytes" in row:
                        row["goal_bytes"] = int((row["compressed_bytes"] + shard) * 1.1)
                        row["goal_met"] = row["peak_bytes"] <= row["goal_bytes"]
                    rows.append(row)
    results = {"rows": rows, "cpu": _cpu(), "goal": "peak ≤ (compressed + largest shard) × 1.1"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    header = ("model", "scheme", "variant", "shards", "peak", "resting", "compressed", "goal", "s")
    table = [header]
    for row in rows:
        if "error" in row:
            table.append((row["model"], row["scheme"], row["variant"], "error: " + row["error"]))
            continue
        table.append(
            (
                row["model"],
                row["scheme"],
                row["variant"],
                f"{row['shards']} × ≤{_mib(row['largest_shard_bytes'])}",
                _mib(row["peak_bytes"]),
                _mib(row["resting_bytes"]),
                _mib(row["compressed_bytes"]),
                ("met" if row["goal_met"] else "missed") + f" (≤{_mib(row['goal_bytes'])})",
                f"{row['seconds']:.0f}",
            )
        )
    widths = [max(len(r[i]) for r in table if i < len(r)) for i in range(len(header))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)))
    print(f"CPU: {results['cpu'].get('model', '?')}; JSON: {args.out}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(json.dumps(_child(*sys.argv[2:])))
    else:
        main()
