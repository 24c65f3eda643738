"""memlens's compressed KV cache vs transformers' caches, side by side in one run.

Rows: transformers ``DynamicCache`` (fp32, bf16) and ``QuantizedCache`` (optimum-quanto
backend, INT4 and INT2: the backend that installs on a CPU; HQQ does not install here);
memlens INT8 and INT4 KV (KIVI-style: the defaults, groups of 128 and no residual beyond
the block being filled; and groups of 64 with a 32-token full-precision residual) and
INT8 with eviction at a 25% budget (StreamingLLM sinks + window, H2O). Three
measurements per row and context:

- memory: exact bytes each cache holds after a ``context``-token prefill and 16 decoded
  tokens, with keys and values of a TinyLlama-1.1B-shaped model (22 layers, 4 KV heads of
  64) in bf16 (fp32 for the fp32 row); the bytes do not depend on the values, so random
  ones are fed straight into the cache (H2O gets uniform attention to rank by);
- speed: decode tokens/s of the TinyLlama-shaped model with random fp32 weights (bf16 for
  the bf16 row) at batch 1, its cache first filled with ``context`` tokens of random keys
  and values (a random model's own prefill would hold equally meaningless ones and take
  minutes on a CPU), then ``--steps`` decode steps through the real forward, the rows
  taking turns step by step; the figure is the median step;
- quality: perplexity of the trained byte-level fixture on ``context`` bytes of its
  held-out text, fed through the cache 16 tokens at a time so that later chunks read the
  cache's stored (quantized, evicted) history; delta against ``DynamicCache`` fp32.

Run: python benchmarks/engine_kv.py [--quick] [--only NAMES] [--contexts 512,4096]
(writes benchmarks/results/engine_kv.json)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Any

import torch
from fixtures.byte_llama_model import encode, heldout_text, load_byte_llama
from rich.console import Console
from rich.table import Table
from torch import nn
from transformers import DynamicCache, QuantizedCache

from memlens.engine.kv.cache import CompressedKVCache, track_attention
from memlens.engine.kv.config import HeavyHitterEviction, KVCacheConfig, SinkWindowEviction
from memlens.engine.loading import random_model
from memlens.profiler.configs import resolve_config
from memlens.units import format_bytes

RESULTS = Path(__file__).parent / "results" / "engine_kv.json"
SPEED_MODEL = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
CONTEXTS = (512, 1024, 2048, 4096, 8192)
SPEED_CONTEXTS = (512, 1024, 2048, 4096)
DECODED = 16
CHUNK = 16
BUDGET = 0.25
GOAL_CONTEXT = 4096

CacheFactory = Callable[[Any, int], Any]


def _dynamic(config: Any, context: int) -> Any:
    return DynamicCache(config=config)


def _quanto(bits: int) -> CacheFactory:
    def make(config: Any, context: int) -> Any:
        return QuantizedCache(backend="quanto", config=config, nbits=bits)

    return make


def _memlens(config: KVCacheConfig | Callable[[int], KVCacheConfig]) -> CacheFactory:
    def make(model_config: Any, context: int) -> Any:
        chosen = config(context) if callable(config) else config
        return CompressedKVCache(chosen, model_config)

    return make


def _sinks_window(context: int) -> KVCacheConfig:
    return KVCacheConfig(bits=8, eviction=SinkWindowEviction(4, int(context * BUDGET) - 4))


# name → (dtype of keys, values and model, how the cache is made)
VARIANTS: dict[str, tuple[torch.dtype, CacheFactory]] = {
    "DynamicCache fp32": (torch.float32, _dynamic),
    "DynamicCache bf16": (torch.bfloat16, _dynamic),
    "QuantizedCache quanto int4": (torch.float32, _quanto(4)),
    "QuantizedCache quanto int2": (torch.float32, _quanto(2)),
    "memlens int8": (torch.float32, _memlens(KVCacheConfig(bits=8))),
    "memlens int4": (torch.float32, _memlens(KVCacheConfig(bits=4))),
    "memlens int8 g64 r32": (
        torch.float32,
        _memlens(KVCacheConfig(bits=8, group_size=64, residual_tokens=32)),
    ),
    "memlens int4 g64 r32": (
        torch.float32,
        _memlens(KVCacheConfig(bits=4, group_size=64, residual_tokens=32)),
    ),
    "memlens int8 sinks+window 25%": (torch.float32, _memlens(_sinks_window)),
    "memlens int8 h2o 25%": (
        torch.float32,
        _memlens(KVCacheConfig(bits=8, eviction=HeavyHitterEviction(budget_fraction=BUDGET))),
    ),
}
BASELINE = "DynamicCache fp32"


def tensor_bytes(value: Any) -> int:
    """Bytes of a tensor, following tensor subclasses (quanto's) down to plain storage."""
    if hasattr(value, "__tensor_flatten__"):
        names, _ = value.__tensor_flatten__()
        return sum(tensor_bytes(getattr(value, name)) for name in names)
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    return 0


def cache_bytes(cache: Any) -> int:
    """Every tensor a cache holds: the memlens report, or each layer's tensor attributes."""
    if isinstance(cache, CompressedKVCache):
        return cache.nbytes()
    return sum(tensor_bytes(value) for layer in cache.layers for value in vars(layer).values())


def _kv_shape(config: Any, tokens: int) -> tuple[int, int, int, int]:
    heads = config.num_key_value_heads
    return (1, heads, tokens, config.hidden_size // config.num_attention_heads)


def _uniform_attention(config: Any, cache: Any, layer: int) -> None:
    """What H2O would be told after an update: attention spread evenly (B, H_q, 1, T)."""
    if isinstance(cache, CompressedKVCache):
        stored = cache.layer(layer).stored_tokens()
        probs = torch.full((1, config.num_attention_heads, 1, stored), 1 / stored)
        cache.layer(layer).observe_attention(probs)


def fill(cache: Any, config: Any, tokens: int, dtype: torch.dtype, steps: int = 0) -> None:
    """Feed ``tokens`` random keys and values into every layer as one prefill, then
    ``steps`` single-token updates, as a model's forward would."""
    generator = torch.Generator().manual_seed(0)
    prefill = torch.randn(_kv_shape(config, tokens), generator=generator).to(dtype)
    step = torch.randn(_kv_shape(config, 1), generator=generator).to(dtype)
    for updates in [prefill, *([step] * steps)]:
        for layer in range(config.num_hidden_layers):
            cache.update(updates, updates, layer)
            _uniform_attention(config, cache, layer)


def run_memory(name: str, context: int) -> dict[str, Any]:
    """Exact bytes after ``context`` + 16 tokens of TinyLlama-shaped keys and values."""
    make = VARIANTS[name][1]
    dtype = torch.float32 if name == BASELINE else torch.bfloat16
    config = _speed_config()
    cache = make(config, context)
    fill(cache, config, context, dtype, DECODED)
    return {"kv_bytes": cache_bytes(cache), "kv_dtype": str(dtype).removeprefix("torch.")}


def _speed_config() -> Any:
    import transformers

    return transformers.LlamaConfig(**resolve_config(SPEED_MODEL, allow_network=False).config)


def prepare_speed(
    models: dict[torch.dtype, nn.Module], name: str, context: int
) -> tuple[nn.Module, Any]:
    """The row's model and its cache filled with ``context`` tokens."""
    dtype, make = VARIANTS[name]
    model = models[dtype]
    cache = make(model.config, context)
    fill(cache, model.config, context, dtype)
    return model, cache


def decode_step(model: nn.Module, cache: Any) -> float:
    """Seconds one decode step takes (H2O rows track attention, as they must)."""
    token = torch.tensor([[7]])
    tracking = (
        track_attention(model, cache) if isinstance(cache, CompressedKVCache) else nullcontext()
    )
    with torch.no_grad(), tracking:
        start = time.perf_counter()
        model(input_ids=token, cache=cache, use_cache=True, logits_to_keep=1)
        return time.perf_counter() - start


def run_speeds(
    models: dict[torch.dtype, nn.Module], names: list[str], context: int, steps: int
) -> dict[str, dict[str, Any]]:
    """Decode tokens/s of every row at ``context``: the rows take turns, one step each,
    ``steps`` rounds after a warm-up round, so that load from elsewhere on the machine
    falls on all of them alike; each row's figure is its median step."""
    prepared = {name: _guard_pair(partial(prepare_speed, models, name, context)) for name in names}
    times: dict[str, list[float]] = {name: [] for name in names}
    errors: dict[str, str] = {}
    for round_ in range(steps + 1):
        for name, pair in prepared.items():
            if isinstance(pair, str) or name in errors:
                continue
            try:
                elapsed = decode_step(*pair)
            except Exception as exc:  # a row that fails is reported, the others go on
                errors[name] = f"{type(exc).__name__}: {exc}"[:200]
                continue
            if round_:
                times[name].append(elapsed)
    results: dict[str, dict[str, Any]] = {}
    for name, pair in prepared.items():
        if isinstance(pair, str) or name in errors:
            results[name] = {"error": pair if isinstance(pair, str) else errors[name]}
            continue
        median = statistics.median(times[name])
        results[name] = {"decode_tokens_per_s": 1 / median, "kv_bytes": cache_bytes(pair[1])}
    return results


def _guard_pair(job: Callable[[], tuple[nn.Module, Any]]) -> tuple[nn.Module, Any] | str:
    try:
        return job()
    except Exception as exc:  # a row that fails is reported, the others go on
        return f"{type(exc).__name__}: {exc}"[:200]


def chunked_perplexity(model: nn.Module, ids: torch.Tensor, cache: Any) -> float:
    """Perplexity of ``ids (T,)`` fed through ``cache`` ``CHUNK`` tokens at a time."""
    total = 0.0
    with torch.no_grad():
        for start in range(0, ids.numel() - 1, CHUNK):
            chunk = ids[start : start + CHUNK + 1]  # the extra token is only a target
            logits = model(input_ids=chunk[None, :-1], cache=cache, use_cache=True).logits
            total += float(
                nn.functional.cross_entropy(logits[0].float(), chunk[1:], reduction="sum")
            )
    return math.exp(total / (ids.numel() - 1))


def run_quality(fixture: dict[torch.dtype, nn.Module], name: str, context: int) -> dict[str, Any]:
    """Perplexity of the trained fixture over ``context`` held-out bytes through the cache."""
    dtype, make = VARIANTS[name]
    model = fixture[dtype]
    cache = make(model.config, context)
    ids = encode(heldout_text())[:context]
    tracking = (
        track_attention(model, cache) if isinstance(cache, CompressedKVCache) else nullcontext()
    )
    with tracking:
        return {"ppl": chunked_perplexity(model, ids, cache)}


def _guard(job: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return job()
    except Exception as exc:  # a row that fails is reported, the others go on
        return {"error": f"{type(exc).__name__}: {exc}"[:200]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated variant names (default: all)")
    parser.add_argument("--contexts", help="memory and quality contexts (default: 512…8192)")
    parser.add_argument("--speed-contexts", help="speed contexts (default: 512…4096)")
    parser.add_argument("--steps", type=int, default=8, help="timed decode steps (default: 8)")
    parser.add_argument("--jobs", default="memory,quality,speed", help="(default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="contexts 512 and 1024, 4 steps")
    parser.add_argument("--out", type=Path, default=RESULTS, help="(default: %(default)s)")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    names = [n.strip() for n in args.only.split(",")] if args.only else list(VARIANTS)
    contexts = _ints(args.contexts, (512, 1024) if args.quick else CONTEXTS)
    speed_contexts = _ints(args.speed_contexts, (512, 1024) if args.quick else SPEED_CONTEXTS)
    steps = 4 if args.quick else args.steps
    jobs = {job.strip() for job in args.jobs.split(",")}
    console = Console(stderr=True)
    rows: dict[str, dict[str, Any]] = {name: {} for name in names}
    results: dict[str, Any] = {"rows": rows, "contexts": contexts, "speed_contexts": speed_contexts}
    results["settings"] = {"decoded_tokens": DECODED, "chunk": CHUNK, "steps": steps}
    results["machine"] = {"threads": torch.get_num_threads(), "torch": torch.__version__}
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        args.out.write_text(json.dumps(results, indent=2))

    if "memory" in jobs:
        for name in names:
            console.print(f"[bold]memory[/] {name}")
            rows[name]["memory"] = {str(c): _guard(partial(run_memory, name, c)) for c in contexts}
        save()
    if "quality" in jobs:
        fixture32, _ = load_byte_llama(torch.float32)
        fixture = {torch.float32: fixture32, torch.bfloat16: load_byte_llama(torch.bfloat16)[0]}
        for name in names:
            console.print(f"[bold]quality[/] {name}")
            rows[name]["quality"] = {
                str(c): _guard(partial(run_quality, fixture, name, c)) for c in contexts
            }
        save()
    if "speed" in jobs:
        config = resolve_config(SPEED_MODEL, allow_network=False).config
        dtypes = {VARIANTS[name][0] for name in names}
        models = {dtype: random_model(config, dtype).eval() for dtype in dtypes}
        for context in speed_contexts:
            console.print(f"[bold]speed[/] at {context}")
            for name, measured in run_speeds(models, names, context, steps).items():
                rows[name].setdefault("speed", {})[str(context)] = measured
            save()
    results["goals"] = _goals(rows)
    save()
    _print(results)
    print(f"\nJSON: {args.out}")


def _ints(text: str | None, default: tuple[int, ...]) -> list[int]:
    return [int(item) for item in text.split(",")] if text else list(default)


def _value(rows: dict[str, Any], name: str, job: str, context: int, key: str) -> float | None:
    found = rows.get(name, {}).get(job, {}).get(str(context), {}).get(key)
    return None if found is None else float(found)


def _ratio(rows: dict[str, Any], name: str, context: int) -> float | None:
    """How many times smaller than bf16 DynamicCache."""
    bf16 = _value(rows, "DynamicCache bf16", "memory", context, "kv_bytes")
    held = _value(rows, name, "memory", context, "kv_bytes")
    return None if bf16 is None or not held else bf16 / held


def _ppl_delta(rows: dict[str, Any], name: str, context: int) -> float | None:
    base = _value(rows, BASELINE, "quality", context, "ppl")
    ppl = _value(rows, name, "quality", context, "ppl")
    return None if base is None or ppl is None else ppl / base - 1


def _speed_ratio(rows: dict[str, Any], name: str, context: int) -> float | None:
    base = _value(rows, BASELINE, "speed", context, "decode_tokens_per_s")
    speed = _value(rows, name, "speed", context, "decode_tokens_per_s")
    return None if base is None or speed is None else speed / base


def _goals(rows: dict[str, Any]) -> dict[str, Any]:
    contexts = sorted({int(c) for row in rows.values() for c in row.get("memory", {})})
    goals: dict[str, Any] = {}
    for name, bytes_goal, ppl_goal in (
        ("memlens int8", 1.9, 0.002),
        ("memlens int4", 3.5, 0.03),
        ("memlens int8 g64 r32", 1.9, 0.002),
        ("memlens int4 g64 r32", 3.5, 0.03),
    ):
        if name not in rows:
            continue
        ratios = {c: _ratio(rows, name, c) for c in contexts}
        deltas = {c: _ppl_delta(rows, name, c) for c in contexts}
        goals[name] = {
            "x_smaller_than_bf16": ratios,
            f"x_smaller_goal_{bytes_goal}_met_at": [
                c for c, r in ratios.items() if r and r >= bytes_goal
            ],
            "ppl_delta": deltas,
            f"ppl_goal_{ppl_goal}_met_at": [
                c for c, d in deltas.items() if d is not None and d <= ppl_goal
            ],
            "speed_vs_dynamic_fp32_at_4096": _speed_ratio(rows, name, GOAL_CONTEXT),
        }
    return goals


def _fmt(value: float | None, pattern: str) -> str:
    return "–" if value is None else format(value, pattern)


def _print(results: dict[str, Any]) -> None:
    console = Console()
    rows = results["rows"]
    for context in sorted(set(results["contexts"]) | set(results["speed_contexts"])):
        table = Table(title=f"context {context} tokens")
        for column in (
            "cache",
            "KV bytes",
            "× vs bf16",
            "fixture ppl",
            "Δ ppl",
            "decode tok/s",
            "× speed",
        ):
            table.add_column(column, justify="left" if column == "cache" else "right")
        for name, row in rows.items():
            memory = row.get("memory", {}).get(str(context), {})
            quality = row.get("quality", {}).get(str(context), {})
            speed = row.get("speed", {}).get(str(context), {})
            error = memory.get("error") or quality.get("error") or speed.get("error")
            table.add_row(
                name if not error else f"{name} ({error[:60]})",
                format_bytes(int(memory["kv_bytes"])) if "kv_bytes" in memory else "–",
                _fmt(_ratio(rows, name, context), ".2f"),
                _fmt(quality.get("ppl"), ".4f"),
                _fmt(_ppl_delta(rows, name, context), "+.3%"),
                _fmt(speed.get("decode_tokens_per_s"), ".2f"),
                _fmt(_speed_ratio(rows, name, context), ".2f"),
            )
        console.print(table)
    console.print_json(data=results.get("goals", {}))


if __name__ == "__main__":
    main()
