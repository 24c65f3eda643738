"""KV caches made from token ids alone, for session-store tests that need no model: the
keys and values of a token depend only on its id and position, as a real model's do on
the prefix, so sessions with equal prefixes have equal prefix KV."""

from __future__ import annotations

import torch

from memlens.engine.sessions.forms import FullKV

LAYERS, HEADS, HEAD_DIM = 2, 2, 8
TOKEN_BYTES = LAYERS * 2 * HEADS * HEAD_DIM * 4  # float32 keys and values per token


def synthetic_kv(tokens: list[int], start: int = 0) -> FullKV:
    """KV ``(1, H, T, D)`` per layer for ``tokens`` at positions ``start…``; values lie
    in [-1, 1]."""
    ids = torch.tensor(tokens, dtype=torch.float32)[:, None]  # (T, 1)
    positions = torch.arange(start, start + len(tokens), dtype=torch.float32)[:, None]
    dims = torch.arange(HEAD_DIM, dtype=torch.float32)[None, :]  # (1, D)
    layers = []
    for layer in range(LAYERS):
        heads = [
            torch.sin(ids * 0.37 + positions * 0.11 + dims * (head + 1) + layer)  # (T, D)
            for head in range(HEADS)
        ]
        keys = torch.stack(heads)[None]  # (1, H, T, D)
        layers.append((keys, torch.cos(keys * 1.7)))
    return FullKV(tuple(layers))
