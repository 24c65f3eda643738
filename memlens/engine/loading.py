"""Models the engine runs: a local folder of safetensors weights, a memlens compressed
checkpoint, or random weights of a known shape (for speed and memory benchmarks).

Loading never runs a repository's own code and reads weights from safetensors only.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from torch import nn

from memlens._transformers import transformers_module
from memlens.engine.weights.checkpoint import METADATA, load_compressed, read_config
from memlens.engine.weights.config import WeightConfig
from memlens.errors import ConfigError, ModelNotFoundError, UsageError
from memlens.profiler.meta import build_meta_model


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to run, and what it is."""

    model: nn.Module
    folder: Path | None
    causal: bool
    """Whether it predicts next tokens (has an LM head)."""
    compressed: WeightConfig | None
    """The config a memlens checkpoint was made with, or the one applied while loading;
    None for plain weights."""


def is_causal(model: nn.Module) -> bool:
    """Whether the model has an LM head (``get_output_embeddings``)."""
    getter = getattr(model, "get_output_embeddings", None)
    return callable(getter) and getter() is not None


def load_model(
    path: str | Path, dtype: torch.dtype = torch.bfloat16, weights: WeightConfig | None = None
) -> LoadedModel:
    """Load a model folder (``config.json`` + ``*.safetensors``) or a memlens checkpoint;
    ``path`` may also be a hub id (``owner/name``) already in the Hugging Face cache.

    A folder whose config names a ``…ForCausalLM`` class (or has no class) loads with its
    LM head; an encoder config (e.g. ``BertModel``) loads as that encoder.

    With ``weights`` (e.g. ``Int4WeightConfig(group_size=64)``), loading and compressing
    are one step: each layer is compressed as its shard is read, so the peak is the
    compressed model plus one shard, never the full-precision model
    (``memlens/engine/load_compressing.py``); the result equals ``load_model`` then
    ``compress_``. ``auto`` and low-rank error targets need calibration: use ``compress_``.
    """
    folder = _model_folder(path)
    if (folder / METADATA).is_file():
        config = read_config(folder)
        if weights is not None:
            raise UsageError(f"{folder} is already compressed ({config.label()})")
        model = load_compressed(folder)
        return LoadedModel(model, folder, is_causal(model), config)
    if not (folder / "config.json").is_file():
        raise ModelNotFoundError(f"{folder} has no config.json")
    if not any(folder.glob("*.safetensors")):
        raise ModelNotFoundError(
            f"{folder} has no *.safetensors weights (memlens does not unpickle .bin files)"
        )
    transformers = transformers_module()
    try:
        config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"{folder / 'config.json'} is not a config transformers reads: {_first_line(exc)}"
        ) from None
    names = list(getattr(config, "architectures", None) or [])
    causal = not names or any(name.endswith("ForCausalLM") for name in names)
    if weights is not None:
        from memlens.engine.load_compressing import load_compressing

        model = load_compressing(folder, config.to_dict(), weights, dtype)
        return LoadedModel(model, folder, is_causal(model), weights)
    auto = transformers.AutoModelForCausalLM if causal else transformers.AutoModel
    progress = transformers.utils.logging
    shown = progress.is_progress_bar_enabled()
    progress.disable_progress_bar()  # memlens draws its own progress
    try:
        model = auto.from_pretrained(
            folder, dtype=dtype, use_safetensors=True, local_files_only=True
        ).eval()
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        raise ConfigError(f"{folder}: the weights do not load: {_first_line(exc)}") from None
    finally:
        if shown:
            progress.enable_progress_bar()
    return LoadedModel(model, folder, causal, None)


def _model_folder(path: str | Path) -> Path:
    """A local folder, or a hub id (``owner/name``) already in the Hugging Face cache;
    nothing is downloaded."""
    folder = Path(path).expanduser()
    if folder.is_dir():
        return folder
    if isinstance(path, str) and _REPO_ID.fullmatch(path):
        from memlens.profiler.configs import hf_cache_snapshot

        if (snapshot := hf_cache_snapshot(path)) is not None:
            return snapshot
        raise ModelNotFoundError(
            f"{path} is neither a local folder nor in the Hugging Face cache: download it "
            f"first (hf download {path})"
        )
    raise ModelNotFoundError(f"{folder} is not a folder with a model in it")


_REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")
"""``owner/name``: a hub id a folder path could also be (the folder wins)."""


def _first_line(exc: BaseException) -> str:
    """transformers' messages run to paragraphs; the first line says what went wrong."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def random_model(
    config: Mapping[str, Any], dtype: torch.dtype = torch.bfloat16, seed: int = 0
) -> nn.Module:
    """A model of ``config``'s shape with seeded random weights, built directly in
    ``dtype`` (a 7B model never exists in fp32) and without transformers' slow init."""
    transformers_module()  # imported under memlens's lock before its submodule
    from transformers.initialization import no_init_weights

    with _default_dtype(dtype), no_init_weights():
        model = build_meta_model(config, device="cpu")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() == 1:
                param.fill_(0.0 if name.endswith("bias") else 1.0)
            else:
                param.normal_(0.0, 0.02, generator=generator)
    return model.eval()
