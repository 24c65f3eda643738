"""The project's trained fixture model: a byte-level Llama trained on the stdlib's source.

``benchmarks/fixtures/byte_llama/`` holds a small ``LlamaForCausalLM`` (about 3 M
parameters, float32) trained by ``benchmarks/fixtures/train_byte_llama.py`` on the Python
standard library, a committed sample of held-out text and the training metrics. Tests and
benchmarks measure compression quality on it (perplexity, greedy agreement) without
downloading anything.

Tokens are raw UTF-8 bytes: vocabulary 256, id = byte value, no special tokens. The folder
is found relative to the source checkout (memlens is installed editable for development);
a wheel does not ship it. Importing this module loads nothing.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import torch
from safetensors import SafetensorError
from torch import nn

from memlens.errors import ConfigError, ModelNotFoundError

FIXTURE_DIR: Final[Path] = (
    Path(__file__).resolve().parents[2] / "benchmarks" / "fixtures" / "byte_llama"
)
"""Where the committed byte-level fixture model lives in a source checkout."""

VOCAB_SIZE: Final = 256
"""Token ids are byte values ``0..255``; there are no special tokens."""

_CONFIG = "config.json"
_WEIGHTS = "model.safetensors"
_HELDOUT = "heldout.txt"
_METRICS = "metrics.json"
_REGENERATE = "python benchmarks/fixtures/train_byte_llama.py"


@dataclasses.dataclass(frozen=True)
class FixtureInfo:
    """What ``metrics.json`` records about the committed fixture model."""

    path: Path
    """The fixture folder."""
    parameters: int
    """Number of parameters (embedding and ``lm_head`` included, untied)."""
    steps: int
    """Optimizer steps it was trained for."""
    seed: int
    """Seed of initialisation and batch sampling."""
    eval_window: int
    """Bytes per evaluation window: ``heldout_text()`` is cut into non-overlapping windows
    of this length, each scored on its own, its first byte being context only."""
    heldout_perplexity: float
    """Perplexity per byte on ``heldout_text()`` (uniform guessing scores 256)."""
    heldout_bits_per_byte: float
    """Cross-entropy on ``heldout_text()`` in bits per byte (uniform guessing scores 8)."""


def fixture_dir(folder: str | Path | None = None) -> Path:
    """The fixture folder (``FIXTURE_DIR`` unless given); ModelNotFoundError when its config
    or weights are missing."""
    path = Path(folder) if folder is not None else FIXTURE_DIR
    missing = [name for name in (_CONFIG, _WEIGHTS) if not (path / name).is_file()]
    if missing:
        raise ModelNotFoundError(
            f"the byte-level fixture model is missing {', '.join(missing)} in {path}: it is "
            "committed in the memlens source repository (benchmarks/fixtures/byte_llama/) "
            "and not shipped in the wheel; use a source checkout, or regenerate it with "
            f"`{_REGENERATE}`"
        )
    return path


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"{path} is missing; regenerate with `{_REGENERATE}`") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is unreadable or not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} does not hold a JSON object")
    return data


def fixture_info(folder: str | Path | None = None) -> FixtureInfo:
    """The recorded figures of the fixture model (no weights are loaded)."""
    path = fixture_dir(folder)
    metrics = _read_json(path / _METRICS)
    try:
        return FixtureInfo(
            path=path,
            parameters=int(metrics["parameters"]),
            steps=int(metrics["train_config"]["steps"]),
            seed=int(metrics["train_config"]["seed"]),
            eval_window=int(metrics["eval_window"]),
            heldout_perplexity=float(metrics["heldout_perplexity_per_byte"]),
            heldout_bits_per_byte=float(metrics["heldout_bits_per_byte"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path / _METRICS} lacks an expected figure: {exc!r}") from exc


def load_byte_llama(
    dtype: torch.dtype = torch.float32, folder: str | Path | None = None
) -> tuple[nn.Module, FixtureInfo]:
    """Load the fixture ``LlamaForCausalLM`` in eval mode on the CPU, cast to ``dtype``.

    Returns the model and its recorded figures. The weights are stored in float32
    (12 MB); nothing is downloaded. ModelNotFoundError when the folder is missing,
    ConfigError when its files are damaged.
    """
    from memlens.profiler.meta import transformers_module

    path = fixture_dir(folder)
    info = fixture_info(path)
    transformers = transformers_module()
    try:
        model: nn.Module = transformers.LlamaForCausalLM.from_pretrained(
            str(path), dtype=dtype, local_files_only=True
        )
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        raise ConfigError(f"cannot load the fixture model from {path}: {exc}") from exc
    model.eval()
    return model, info


def encode(text: str) -> torch.Tensor:
    """Token ids of ``text``: its UTF-8 bytes as a ``(N,)`` int64 tensor."""
    data = bytearray(text.encode("utf-8"))
    if not data:
        return torch.empty(0, dtype=torch.long)
    return torch.frombuffer(data, dtype=torch.uint8).to(torch.long)  # (N,)


def decode(ids: torch.Tensor | Sequence[int]) -> str:
    """Text of token ids (``(N,)`` or ``(1, N)``); invalid UTF-8 becomes U+FFFD."""
    if isinstance(ids, torch.Tensor):
        if ids.dim() == 2 and ids.shape[0] == 1:
            ids = ids[0]  # (N,)
        if ids.dim() != 1:
            raise ValueError(f"decode takes (N,) or (1, N) ids, got shape {tuple(ids.shape)}")
        values: list[int] = ids.tolist()
    else:
        values = list(ids)
    if any(not 0 <= v < VOCAB_SIZE for v in values):
        raise ValueError(f"byte token ids lie in [0, {VOCAB_SIZE}); got {values}")
    return bytes(values).decode("utf-8", errors="replace")


def heldout_text(folder: str | Path | None = None) -> str:
    """The committed held-out sample (about 64 KiB of standard-library source the model
    never trained on), identical whatever Python is installed."""
    path = fixture_dir(folder) / _HELDOUT
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"{path} is missing; regenerate with `{_REGENERATE}`") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not valid UTF-8: {exc}") from exc
