"""Findings → memory estimates, with the analytic estimator only (no torch here).

Model references resolve offline (local paths relative to the document or the
workspace, the HF cache, memlens's table); results are cached briefly so that typing
does not re-read config files on every keystroke.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memlens.errors import MemlensError
from memlens.lsp_server.analysis.findings import ModelLoad
from memlens.lsp_server.analysis.lru import Lru
from memlens.profiler.configs import ResolvedConfig, resolve_config
from memlens.profiler.estimate import MemoryEstimate, analytic_estimate
from memlens.profiler.tensors import DEFAULT_GROUP_SIZE, FLOAT_DTYPES, StorageDtype

CACHE_SECONDS = 30.0
MAX_CACHED = 1024
"""Entries each of the estimator's caches keeps (resolved references, estimates): the
least recently used go first, so a long session does not grow them without bound."""
_SAVED_DTYPES = {dtype.torch_name: dtype for dtype in FLOAT_DTYPES}
"""A config's ``dtype``/``torch_dtype``, which transformers writes as torch names."""


class NotStatic(MemlensError):
    """A load whose config or id the source does not state as a literal or constant."""


@dataclass(frozen=True)
class LoadEstimate:
    """The estimate for one model load, or why there is none."""

    estimate: MemoryEstimate | None
    error: str | None = None
    unresolved: bool = False
    """True when the reference could not be resolved offline (an id to download)."""
    assumed_dtype: bool = False
    """True when the dtype came from the config (``auto``) or a default, not the call."""


def storage_dtype(
    load: ModelLoad, config: dict[str, Any], override: str | None = None
) -> tuple[StorageDtype, bool]:
    """The dtype the load uses: quantization, else explicit dtype, else transformers 5's
    ``auto`` (the config's ``dtype``/``torch_dtype``), else fp32. Second: whether assumed."""
    if load.quantization:
        return StorageDtype(load.quantization), False
    dtype = override or load.dtype
    if dtype in FLOAT_DTYPES:
        return StorageDtype(dtype), False
    saved = config.get("dtype") or config.get("torch_dtype")
    if isinstance(saved, str) and saved in _SAVED_DTYPES:
        return _SAVED_DTYPES[saved], True
    return StorageDtype.FP32, True


def builds_bare_model(load: ModelLoad) -> bool:
    """Whether the load builds a bare model, without the task head the config's
    ``architectures`` may name: ``AutoModel`` or a class named like ``LlamaModel``/
    ``BertModel`` (not ``GPT2LMHeadModel``, ``AutoModelForCausalLM``, a pipeline)."""
    if load.loader == "pipeline":
        return False
    name = load.loader.rsplit(".", 2)[-2]
    return (
        name.endswith("Model")
        and "Head" not in name
        and "For" not in name
        and name != "PreTrainedModel"
    )


class Estimator:
    """Resolves and estimates model loads for one workspace."""

    def __init__(self, workspace_root: Path | None = None) -> None:
        self.workspace_root = workspace_root
        self._resolved: Lru[tuple[str, str], tuple[float, ResolvedConfig | MemlensError]] = Lru(
            MAX_CACHED
        )
        self._estimates: Lru[tuple[object, ...], tuple[float, LoadEstimate]] = Lru(MAX_CACHED)

    def resolve(self, ref: str, document_dir: Path | None) -> ResolvedConfig:
        """Resolve ``ref`` offline; relative paths try the document's folder first."""
        key = (ref, str(document_dir))
        cached = self._resolved.get(key)
        if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
            if isinstance(cached[1], MemlensError):
                raise cached[1]
            return cached[1]
        result: ResolvedConfig | MemlensError
        try:
            result = self._resolve_uncached(ref, document_dir)
        except MemlensError as exc:
            result = exc
        self._resolved.put(key, (time.monotonic(), result))
        if isinstance(result, MemlensError):
            raise result
        return result

    def _resolve_uncached(self, ref: str, document_dir: Path | None) -> ResolvedConfig:
        for base in (document_dir, self.workspace_root):
            if base is not None and not Path(ref).is_absolute() and (base / ref).exists():
                return resolve_config(str(base / ref), allow_network=False)
        return resolve_config(ref, allow_network=False)

    def estimate_load(
        self,
        load: ModelLoad,
        document_dir: Path | None,
        dtype_override: str | None = None,
        batch: int = 1,
    ) -> LoadEstimate:
        """The analytic estimate of one load at its (or an overriding) dtype.

        Memoized on what the estimate depends on, so a file that loads one model in many
        places (or is re-analysed on every keystroke) estimates it once.
        """
        config_key = (
            tuple(sorted((k, repr(v)) for k, v in load.config.items()))
            if load.config is not None
            else None
        )
        key = (
            load.model_ref,
            builds_bare_model(load),
            config_key,
            load.dtype,
            load.quantization,
            load.group_size,
            dtype_override,
            batch,
            str(document_dir),
        )
        cached = self._estimates.get(key)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        result = self._estimate_uncached(load, document_dir, dtype_override, batch)
        self._estimates.put(key, (time.monotonic(), result))
        return result

    def model_config(
        self, load: ModelLoad, document_dir: Path | None
    ) -> tuple[dict[str, Any], str]:
        """The transformers config dict a load builds and the model's name: its config
        literal, else its id resolved offline. :class:`NotStatic` when the source does not
        say; the resolver's MemlensError when an id does not resolve here."""
        if load.config is not None:
            if any(v is None for v in load.config.values()):
                raise NotStatic("the config has fields memlens cannot read statically")
            return dict(load.config), f"{load.config['model_type']} config"
        if load.model_ref is None:
            raise NotStatic("the model id is not a literal or module constant")
        resolved = self.resolve(load.model_ref, document_dir)
        return resolved.config, resolved.model

    def _estimate_uncached(
        self, load: ModelLoad, document_dir: Path | None, dtype_override: str | None, batch: int
    ) -> LoadEstimate:
        try:
            config, model = self.model_config(load, document_dir)
        except NotStatic as exc:
            return LoadEstimate(None, str(exc))
        except MemlensError as exc:
            return LoadEstimate(None, str(exc), unresolved=True)
        dtype, assumed = storage_dtype(load, config, dtype_override)
        try:
            [estimate] = analytic_estimate(
                config,
                model,
                [dtype],
                bare=builds_bare_model(load),
                batch=batch,
                group_size=DEFAULT_GROUP_SIZE if load.group_size is None else load.group_size,
            )
        except MemlensError as exc:
            return LoadEstimate(None, str(exc))
        return LoadEstimate(estimate, assumed_dtype=assumed)
