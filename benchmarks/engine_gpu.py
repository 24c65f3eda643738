"""memlens's engine on a CUDA GPU, checked and then measured against transformers bf16 and
torchao, in one run (issue 19). Prepared on CPU-only machines: nothing here has run on a
GPU until a run's JSON says so.

1. Correctness, first: the GPU tests (INT4 tinygemm and INT8 against the CPU references,
   INT4 layers moving between devices, the compressed KV cache and sessions on CUDA, the
   static-cache compiled step, the profiler's CUDA figures), then checks on full-size
   layers (GPU against CPU, bytes held against ``torch.cuda.memory_allocated``) and the
   profiler's call peak against ``torch.cuda.max_memory_allocated``.
2. Figures: TinyLlama-1.1B- and Llama-2-7B-shaped models with random bf16 weights, batch 1
   and 8: weight bytes and decode tokens/s for transformers bf16, torchao int8 and int4
   weight-only (where torchao imports), memlens INT8 and INT4 g64/g128; eager steps for
   every row, CUDA-graph steps (memlens's static decoder) for every row while time lasts.
   Then multi-turn time to first token at turn 5 with ~2k tokens of history: a session's
   incremental prefill (eager, and through the static decoder) against a full recompute.

Every row runs under one time budget (``--budget-s``, default 420 s): rows past it are
recorded as skipped, so the run ends within 8 minutes. The table is printed and the JSON
written to ``DIR/engine_gpu.json`` with the GPU's name, the CPU's model and flags, and the
versions. Ratios within one run are what count.

Install on a GPU machine: ``make .venv/.memlens-installed`` pins torch 2.13.0; on Linux
x86-64 PyPI's wheel of it is the CUDA build, but a machine whose pip finds CPU wheels
first (as memlens's CI does) gets ``+cpu``. ``make gpu-bench`` reinstalls the CUDA build
(``TORCH_GPU_INDEX``, PyPI by default) plus the ``bench`` extra (torchao) and runs this.

Run: python benchmarks/engine_gpu.py --out DIR   (exit 0 done; 1 a correctness check
failed, figures still written; 3 no CUDA device or a CPU-only torch)
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
SHAPES = {  # the goals are on the 7B shape: it runs first
    "Llama-2-7B": "meta-llama/Llama-2-7b-hf",
    "TinyLlama-1.1B": "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
}
BATCHES = (1, 8)


@dataclass(frozen=True)
class Sizes:
    """Token counts of one run."""

    prompt: int = 32
    warmup: int = 4
    steps: int = 48
    history: int = 2048
    turn: int = 32


SMOKE = Sizes(prompt=8, warmup=1, steps=4, history=64, turn=8)
GPU_TESTS = (
    "tests/kernels/test_cuda.py",
    "tests/engine/weights/test_int4_devices.py",
    "tests/engine/kv/test_cache_devices.py",
    "tests/engine/sessions/test_chat_cuda.py",
    "tests/engine/test_static_decoding.py",
    "tests/profiler/test_peak.py::test_measure_peak_on_cuda_is_the_allocators_peak",
    "tests/profiler/test_measure_layers.py",
    "tests/kernels/test_kernels.py",
    "tests/kernels/test_kv.py",
)
NO_CUDA = 3


def _preflight() -> str | None:
    """Why this machine cannot run the script, or None."""
    if torch.version.cuda is None:
        return (
            f"torch {torch.__version__} is a CPU-only build: install the CUDA build "
            "(`make gpu-bench` does) on a machine with an NVIDIA GPU"
        )
    if not torch.cuda.is_available():
        return "torch sees no CUDA device: this script needs an NVIDIA GPU (issue 19)"
    return None


def _machine(device: str) -> dict[str, Any]:
    cpu = {"model": platform.processor(), "flags": ""}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        text = cpuinfo.read_text()
        if found := re.search(r"^model name\s*:\s*(.+)$", text, re.M):
            cpu["model"] = found.group(1)
        if found := re.search(r"^flags\s*:\s*(.+)$", text, re.M):
            cpu["flags"] = found.group(1)
    gpu: dict[str, Any] = {"gpu": "none (CPU smoke test)"}
    if device == "cuda":
        gpu = {
            "gpu": torch.cuda.get_device_name(0),
            "gpu_capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
            "gpu_memory_bytes": torch.cuda.get_device_properties(0).total_memory,
        }
    return {
        **gpu,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cpu": cpu,
    }


def _gpu_tests(timeout_s: float) -> dict[str, Any]:
    """The GPU tests in a subprocess: pass/fail counts and the failures' names."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-rfE", *GPU_TESTS]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"ok": False, "summary": f"timed out after {timeout_s:.0f} s"}
    lines = done.stdout.strip().splitlines()
    failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    summary = lines[-1] if lines else done.stderr[-500:]
    return {"ok": done.returncode == 0, "summary": summary, "failed": failed}


def _checks() -> dict[str, Any]:
    """Full-size layers on the GPU against the CPU reference, and the profiler's figures."""
    from memlens.engine.weights.layers import Int4Linear, Int8Linear
    from memlens.profiler.measure import measure_peak, module_bytes

    out: dict[str, Any] = {}
    torch.manual_seed(0)
    linear = nn.Linear(4096, 11008, bias=False).to(torch.bfloat16)
    x = torch.randn(8, 4096, dtype=torch.bfloat16)
    reference = linear(x).float()
    for name, make in {
        "int8": lambda: Int8Linear.from_linear(linear),
        "int4_g64": lambda: Int4Linear.from_linear(linear, 64),
        "int4_g128": lambda: Int4Linear.from_linear(linear, 128),
    }.items():
        layer = make()
        with torch.no_grad():
            on_cpu = layer(x).float()
            before = torch.cuda.memory_allocated()
            layer.cuda()
            held = torch.cuda.memory_allocated() - before
            on_gpu = layer(x.cuda()).float().cpu()
        out[name] = {
            "gpu_vs_cpu_rel_error": float((on_gpu - on_cpu).norm() / on_cpu.norm()),
            "quantization_rel_error": float((on_cpu - reference).norm() / reference.norm()),
            "module_bytes": module_bytes(layer),
            "allocated_bytes": held,
        }
        out[name]["ok"] = out[name]["gpu_vs_cpu_rel_error"] < 1e-2
        del layer
    model = nn.Sequential(*[nn.Linear(4096, 4096) for _ in range(4)]).cuda().to(torch.bfloat16)
    batch = torch.randn(64, 4096, device="cuda", dtype=torch.bfloat16)
    torch.cuda.reset_peak_memory_stats()
    with torch.no_grad():
        _, peak = measure_peak(lambda: model(batch), "cuda", module_bytes(model))
    independent = torch.cuda.max_memory_allocated()
    out["profiler_peak"] = {
        "measured_peak_bytes": peak.peak_bytes,
        "max_memory_allocated": independent,
        "ok": peak.peak_extra_bytes > 0 and peak.peak_bytes <= independent + (1 << 20),
    }
    return out


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _random_model(ref: str, device: str, layers: int | None) -> nn.Module:
    """A bf16 model of ``ref``'s shape (``layers`` decoder layers if given) with random
    weights, made on ``device`` (a 7B model is filled on the GPU in seconds)."""
    from memlens._transformers import transformers_module
    from memlens.profiler.configs import resolve_config
    from memlens.profiler.meta import build_meta_model

    config = dict(resolve_config(ref, allow_network=False).config)
    config["max_position_embeddings"] = max(4096, int(config.get("max_position_embeddings", 0)))
    if layers is not None:
        config["num_hidden_layers"] = layers
    transformers_module()
    from transformers.initialization import no_init_weights

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with no_init_weights():
            model = build_meta_model(config, device=device)
    finally:
        torch.set_default_dtype(previous)
    generator = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() == 1:
                param.fill_(0.0 if name.endswith("bias") else 1.0)
            else:
                param.normal_(0.0, 0.02, generator=generator)
    return model.eval()


def _variants() -> dict[str, Callable[[nn.Module], None] | None]:
    from memlens.engine import compress_
    from memlens.engine.weights.config import Int4WeightConfig, Int8WeightConfig

    def torchao_int8(model: nn.Module) -> None:
        from torchao.quantization import Int8WeightOnlyConfig, quantize_

        quantize_(model, Int8WeightOnlyConfig())

    def torchao_int4(model: nn.Module) -> None:
        from torchao.quantization import Int4WeightOnlyConfig, quantize_

        try:  # tinygemm, the kernel memlens uses (newer torchao defaults to another)
            config = Int4WeightOnlyConfig(group_size=128, int4_packing_format="tile_packed_to_4d")
        except TypeError:
            config = Int4WeightOnlyConfig(group_size=128)
        quantize_(model, config)

    def memlens(config: Any) -> Callable[[nn.Module], None]:
        def apply(model: nn.Module) -> None:
            compress_(model, config)

        return apply

    return {  # the goals' rows first, so a short time budget still measures them
        "memlens int4 g128": memlens(Int4WeightConfig(group_size=128)),
        "torchao int4 wo g128": torchao_int4,
        "transformers bf16": None,
        "memlens int8": memlens(Int8WeightConfig()),
        "torchao int8 wo": torchao_int8,
        "memlens int4 g64": memlens(Int4WeightConfig(group_size=64)),
    }


def _tensor_bytes(tensor: torch.Tensor) -> int:
    """Bytes behind a tensor, looking inside tensor subclasses (torchao's report their
    logical dtype and shape)."""
    if type(tensor) not in (torch.Tensor, nn.Parameter) and hasattr(tensor, "__tensor_flatten__"):
        names, _ = tensor.__tensor_flatten__()
        return sum(_tensor_bytes(getattr(tensor, name)) for name in names)
    return tensor.numel() * tensor.element_size()


def _weight_bytes(model: nn.Module) -> int:
    seen: set[int] = set()
    total = 0
    for tensor in (*model.parameters(), *model.buffers()):
        if id(tensor) not in seen:
            seen.add(id(tensor))
            total += _tensor_bytes(tensor)
    return total


def _eager_tok_s(model: nn.Module, batch: int, device: str, sizes: Sizes) -> float:
    from memlens.engine.decoding import stream

    ids = torch.randint(0, 1000, (batch, sizes.prompt), device=device)
    with torch.no_grad():
        for _ in stream(model, ids, sizes.warmup):
            pass
        _sync(device)
        start = time.perf_counter()
        for _ in stream(model, ids, sizes.steps):
            pass
        _sync(device)
    return batch * sizes.steps / (time.perf_counter() - start)  # prefill included, as users see it


def _graph_tok_s(model: nn.Module, batch: int, device: str, sizes: Sizes) -> float:
    from memlens.engine.static_decoding import StaticDecoder

    room = sizes.prompt + sizes.warmup + sizes.steps + 16
    decoder = StaticDecoder(model, room, compiled=device == "cuda")
    ids = torch.randint(0, 1000, (batch, sizes.prompt), device=device)
    with torch.no_grad():
        token = decoder.prefill(ids).argmax(-1)
        for _ in range(max(3, sizes.warmup)):  # compiles, then records the graph
            token = decoder.step(token).argmax(-1)
        _sync(device)
        start = time.perf_counter()
        for _ in range(sizes.steps):
            token = decoder.step(token).argmax(-1)
        _sync(device)
    return batch * sizes.steps / (time.perf_counter() - start)


def _figures(
    deadline: float, graphs: bool, device: str, layers: int | None, sizes: Sizes
) -> list[dict[str, Any]]:
    """Each shape, each variant: weight bytes, then eager steps at every batch, then graph
    steps at every batch (each graph row costs a compile, so they come last)."""
    rows: list[dict[str, Any]] = []
    for shape, ref in SHAPES.items():
        if time.perf_counter() > deadline:
            rows.append({"shape": shape, "skipped": "time budget"})
            continue
        base = _random_model(ref, device, layers)
        for name, convert in _variants().items():
            row: dict[str, Any] = {"shape": shape, "variant": name}
            rows.append(row)
            if time.perf_counter() > deadline:
                row["skipped"] = "time budget"
                continue
            try:
                model = copy.deepcopy(base)
                if convert is not None:
                    convert(model)
                row["weight_bytes"] = _weight_bytes(model)
                for batch in BATCHES:
                    row[f"eager_tok_s_b{batch}"] = _eager_tok_s(model, batch, device, sizes)
                for batch in BATCHES if graphs else ():
                    if time.perf_counter() < deadline:
                        row[f"graph_tok_s_b{batch}"] = _graph_tok_s(model, batch, device, sizes)
            except Exception as exc:  # a peer library's failure is a row's result
                row["error"] = f"{type(exc).__name__}: {exc}"[:300]
            finally:
                model = None
                if device == "cuda":
                    torch.cuda.empty_cache()
        del base
    return rows


def _timed(fn: Callable[[], Any], reps: int, device: str) -> float:
    times = []
    for _ in range(reps):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _multi_turn(device: str, layers: int | None, sizes: Sizes) -> dict[str, Any]:
    """Turn 5 of a conversation with ``sizes.history`` tokens before it: time to first
    token of a ``sizes.turn``-token message on the kept cache (eager; static decoder with
    the history copied in), against one prefill of the whole conversation."""
    from memlens._transformers import transformers_module
    from memlens.engine.decoding import ForwardCall
    from memlens.engine.static_decoding import StaticDecoder

    model = _random_model(SHAPES["TinyLlama-1.1B"], device, layers)
    forward = ForwardCall.of(model)
    dynamic = transformers_module().DynamicCache
    history = torch.randint(0, 1000, (1, sizes.history), device=device)
    turn = torch.randint(0, 1000, (1, sizes.turn), device=device)
    with torch.no_grad():
        cache = dynamic(config=model.config)
        forward(model, history, cache)
        layers = tuple((layer.keys, layer.values) for layer in cache.layers)

        def reuse() -> None:  # a session's turn: its cache grows into new tensors
            forward(model, turn, dynamic(ddp_cache_data=layers, config=model.config))

        def recompute() -> None:
            forward(model, torch.cat([history, turn], dim=1), dynamic(config=model.config))

        decoder = StaticDecoder(model, sizes.history + 4 * sizes.turn, compiled=device == "cuda")

        def graph() -> None:
            decoder.load(layers)
            decoder.prefill(turn)

        for fn in (reuse, recompute, graph, graph):  # warm up (graph: compile, record)
            fn()
        row = {
            "history_tokens": sizes.history,
            "turn_tokens": sizes.turn,
            "ttft_recompute_s": _timed(recompute, 5, device),
            "ttft_reuse_eager_s": _timed(reuse, 5, device),
            "ttft_reuse_graph_s": _timed(graph, 5, device),
        }
    row["speedup_eager"] = row["ttft_recompute_s"] / row["ttft_reuse_eager_s"]
    row["speedup_graph"] = row["ttft_recompute_s"] / row["ttft_reuse_graph_s"]
    return row


def _goals(rows: list[dict[str, Any]], turn: dict[str, Any] | None) -> dict[str, Any]:
    """The issue's goals, from the 7B rows at batch 1 (the best of eager and graph steps)."""

    def speed(variant: str) -> float | None:
        row = next(
            (r for r in rows if r.get("shape") == "Llama-2-7B" and r.get("variant") == variant), {}
        )
        found = [v for k, v in row.items() if k.endswith("tok_s_b1")]
        return max(found) if found else None

    def ratio(a: str, b: str) -> float | None:
        top, bottom = speed(a), speed(b)
        return None if top is None or bottom is None else top / bottom

    return {
        "int4_g128_vs_torchao_int4 (goal >= 1.0)": ratio(
            "memlens int4 g128", "torchao int4 wo g128"
        ),
        "int4_g128_vs_bf16 (goal >= 2.5)": ratio("memlens int4 g128", "transformers bf16"),
        "int8_vs_bf16 (goal >= 1.6)": ratio("memlens int8", "transformers bf16"),
        "ttft_turn5_vs_recompute (goal >= 5)": None
        if turn is None
        else max(turn["speedup_eager"], turn["speedup_graph"]),
    }


def _print(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    table = Table(title=f"memlens engine on {results['machine']['gpu']} (one run; ratios count)")
    columns = [
        "shape",
        "variant",
        "weights GiB",
        *[f"{m} b{b}" for b in BATCHES for m in ("eager", "graph")],
    ]
    for column in columns:
        table.add_column(column)
    for row in results["figures"]:
        cells = [row.get("shape", ""), row.get("variant", "")]
        cells.append(
            f"{row['weight_bytes'] / 2**30:.2f}"
            if "weight_bytes" in row
            else row.get("skipped", row.get("error", "–"))[:40]
        )
        for batch in BATCHES:
            for mode in ("eager", "graph"):
                value = row.get(f"{mode}_tok_s_b{batch}")
                cells.append("–" if value is None else f"{value:.0f}")
        table.add_row(*cells)
    console.print(table)
    console.print_json(
        json.dumps(
            {
                "checks_ok": results["checks_ok"],
                "multi_turn": results.get("multi_turn"),
                "goals": results["goals"],
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for engine_gpu.json")
    parser.add_argument("--budget-s", type=float, default=420.0, help="time for the whole run")
    parser.add_argument("--no-graphs", action="store_true", help="eager steps only")
    parser.add_argument(
        "--smoke-cpu-layers",
        type=int,
        help="smoke-test this script on the CPU with models cut to this many layers "
        "(no GPU tests or checks, figures meaningless)",
    )
    args = parser.parse_args()
    layers = args.smoke_cpu_layers
    device = "cpu" if layers is not None else "cuda"
    sizes = Sizes() if layers is None else SMOKE
    if device == "cuda" and (why := _preflight()) is not None:
        print(f"engine_gpu: {why}", file=sys.stderr)
        return NO_CUDA
    sys.path.insert(0, str(ROOT))
    start = time.perf_counter()
    deadline = start + args.budget_s
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "engine_gpu.json"
    results: dict[str, Any] = {"machine": _machine(device), "sizes": asdict(sizes), "partial": True}
    if device == "cuda":
        results["gpu_tests"] = _gpu_tests(timeout_s=min(150.0, args.budget_s / 3))
        path.write_text(json.dumps(results, indent=2))
        try:
            results["checks"] = _checks()
        except Exception as exc:
            results["checks"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    checks = results.get("checks", {})
    results["checks_ok"] = device == "cuda" and bool(
        results["gpu_tests"]["ok"]
        and all(isinstance(v, dict) and v.get("ok") for v in checks.values())
    )
    path.write_text(json.dumps(results, indent=2))
    try:
        results["multi_turn"] = _multi_turn(device, layers, sizes)
    except Exception as exc:
        results["multi_turn"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    path.write_text(json.dumps(results, indent=2))
    results["figures"] = _figures(deadline, not args.no_graphs, device, layers, sizes)
    turn = results["multi_turn"] if "error" not in results["multi_turn"] else None
    results["goals"] = _goals(results["figures"], turn)
    results["partial"] = False
    results["elapsed_s"] = time.perf_counter() - start
    path.write_text(json.dumps(results, indent=2))
    _print(results)
    print(f"\nJSON: {path}")
    return 0 if results["checks_ok"] or device == "cpu" else 1


if __name__ == "__main__":
    sys.exit(main())
