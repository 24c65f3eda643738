"""``memlens generate DIR --prompt …``: stream a continuation from a local model or a
memlens compressed checkpoint."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from memlens.errors import UsageError

if TYPE_CHECKING:
    from memlens.engine.decoding import Sampling

NAME = "generate"
HELP = "stream text from a local model folder or a memlens compressed checkpoint"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``memlens generate``."""
    parser.add_argument("model", metavar="DIR", help="model folder or compressed checkpoint")
    parser.add_argument("--prompt", required=True, help="text to continue")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="(default: %(default)s)")
    add_sampling_arguments(parser)
    parser.add_argument(
        "--kv",
        metavar="SPEC",
        help="compressed KV cache, e.g. int8, int4:g32:r128, int8,sinks:4+window:508, "
        "int8,h2o:0.25 (default: transformers' DynamicCache)",
    )
    parser.add_argument("--json", action="store_true", help="print text and speeds as JSON")


def add_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    """``--temperature``, ``--top-k``, ``--top-p``, ``--seed``: what :func:`sampling` reads."""
    parser.add_argument(
        "--temperature", type=float, help="sample at this temperature (default: greedy)"
    )
    parser.add_argument("--top-k", type=int, help="sample among the k most likely tokens")
    parser.add_argument("--top-p", type=float, help="sample from the nucleus of mass p")
    parser.add_argument("--seed", type=int, help="seed for reproducible samples")


def sampling(args: argparse.Namespace) -> Sampling | None:
    """Greedy unless a sampling option was given."""
    from memlens.engine.decoding import Sampling

    options = (args.temperature, args.top_k, args.top_p, args.seed)
    if all(option is None for option in options):
        return None
    temperature = 1.0 if args.temperature is None else args.temperature
    return Sampling(temperature, args.top_k, args.top_p, args.seed)


def run(args: argparse.Namespace) -> int:
    """Load, then print tokens as they are decoded."""
    import torch

    from memlens.engine.decoding import DecodeStats, stream
    from memlens.engine.kv.cache import CompressedKVCache, track_attention
    from memlens.engine.kv.config import parse_kv
    from memlens.engine.loading import load_model
    from memlens.engine.tokens import load_codec

    if not args.prompt:
        raise UsageError("--prompt is empty")
    kv = None if args.kv is None else parse_kv(args.kv)
    chosen = sampling(args)
    loaded = load_model(Path(args.model))
    if not loaded.causal:
        raise UsageError(f"{args.model} is an encoder without an LM head: it cannot generate")
    codec = load_codec(Path(args.model))
    prompt = torch.tensor(codec.encode(args.prompt), dtype=torch.long)
    stats = DecodeStats()
    cache = None if kv is None else CompressedKVCache(kv, loaded.model.config)
    steps = stream(
        loaded.model,
        prompt,
        args.max_new_tokens,
        chosen,
        codec.eos_token_id,
        cache=cache,
        stats=stats,
    )

    def tokens() -> Iterator[int]:
        # H2O ranks tokens by attention probabilities (a no-op for other caches)
        tracking = nullcontext() if cache is None else track_attention(loaded.model, cache)
        with tracking:
            for step in steps:
                yield int(step[0])

    pieces = codec.stream_decode(tokens())
    if args.json:
        text = "".join(pieces)
        json.dump(
            {
                "prompt": args.prompt,
                "text": text,
                "new_tokens": stats.new_tokens,
                "prefill_tokens_per_s": stats.prefill_tokens_per_s,
                "decode_tokens_per_s": stats.decode_tokens_per_s,
            },
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
        return 0
    sys.stdout.write(args.prompt)
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    print(
        f"{stats.new_tokens} tokens · prefill {stats.prefill_tokens_per_s:.0f} tokens/s · "
        f"decode {stats.decode_tokens_per_s:.1f} tokens/s",
        file=sys.stderr,
    )
    return 0
