"""Request parameters shared by the worker tasks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memlens.errors import UsageError
from memlens.profiler.configs import ResolvedConfig, resolve_config
from memlens.profiler.tensors import StorageDtype, parse_dtypes


@dataclass(frozen=True)
class ModelRequest:
    """Which model, at which dtypes and shape."""

    model: str
    document_dir: Path | None
    dtypes: tuple[StorageDtype, ...]
    context: int | None
    batch: int
    allow_network: bool

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> ModelRequest:
        """Validate request params; bad ones raise UsageError."""
        model = params.get("model")
        if not isinstance(model, str) or not model:
            raise UsageError("request needs 'model': a model id or path")
        dtypes = params.get("dtypes") or ["bf16"]
        if not isinstance(dtypes, list):
            raise UsageError("'dtypes' must be a list of dtype names")
        context, batch = params.get("context"), params.get("batch", 1)
        for name, value in (("context", context), ("batch", batch)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise UsageError(f"'{name}' must be an integer")
        folder = params.get("document_dir")
        return cls(
            model,
            Path(folder) if isinstance(folder, str) else None,
            parse_dtypes(",".join(str(d) for d in dtypes)),
            context,
            batch,
            bool(params.get("allow_network", False)),
        )

    def resolve(self) -> ResolvedConfig:
        """The config, relative paths tried against the document's folder first."""
        if self.document_dir is not None and (self.document_dir / self.model).exists():
            return resolve_config(str(self.document_dir / self.model), allow_network=False)
        return resolve_config(self.model, allow_network=self.allow_network)


def weights_folder(resolved: ResolvedConfig) -> Path | None:
    """The folder holding this model's safetensors weights, if they are on disk."""
    if resolved.origin not in ("path", "hf-cache"):
        return None
    folder = Path(resolved.location).parent
    return folder if any(folder.glob("*.safetensors")) else None
