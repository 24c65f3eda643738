"""Resolve what a user calls a model to its ``config.json``, offline first.

Order: a local directory or ``config.json`` path; the local Hugging Face cache; the table
of well-known configs shipped in ``known_configs/``; and only then the hub, fetching
``config.json`` alone with a time limit, never when ``HF_HUB_OFFLINE`` or
``MEMLENS_OFFLINE`` is set. Pure Python (no torch), so the language server can use it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from memlens.errors import ConfigError, ModelNotFoundError

Origin = Literal["path", "hf-cache", "built-in", "hub"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_TRUE = {"1", "true", "yes", "on"}
HUB_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ResolvedConfig:
    """A model's config and where it came from."""

    model: str
    """The canonical id (or the path as given)."""
    config: dict[str, Any]
    origin: Origin
    location: str
    """The file or URL read."""


def offline() -> bool:
    """True when the environment forbids network look-ups."""
    return any(
        os.environ.get(v, "").lower() in _TRUE for v in ("HF_HUB_OFFLINE", "MEMLENS_OFFLINE")
    )


def parse_config(text: str, location: str) -> dict[str, Any]:
    """Parse config JSON text; a corrupt or truncated file raises ConfigError."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{location} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            "the file may be truncated: download it again"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{location} must hold a JSON object, found {type(data).__name__}")
    return data


def _read_config(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    return parse_config(text, str(path))


def _expand(ref: str) -> Path:
    try:
        return Path(ref).expanduser()
    except RuntimeError:  # ~user that does not exist
        return Path(ref)


def _from_path(ref: str) -> ResolvedConfig | None:
    path = _expand(ref)
    looks_like_path = ref.startswith((".", "/", "~")) or os.sep in ref
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file():
            raise ModelNotFoundError(
                f"directory {path} has no config.json: point MODEL at a model directory "
                "(the folder holding config.json) or at the config.json file itself"
            )
        return ResolvedConfig(str(path), _read_config(config), "path", str(config))
    if path.is_file():
        return ResolvedConfig(str(path), _read_config(path), "path", str(path))
    if path.exists():
        raise ModelNotFoundError(f"{path} is neither a config.json file nor a model directory")
    if ref.endswith(".json") or (looks_like_path and not _REPO_ID.match(ref)):
        raise ModelNotFoundError(f"no such file or directory: {path}")
    return None


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache folder, as huggingface_hub computes it."""
    if cache_dir := os.environ.get("HF_HUB_CACHE"):
        return Path(cache_dir)
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface"
    )
    return Path(home) / "hub"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # a dangling snapshot link
        return 0.0


def hf_cache_snapshot(ref: str) -> Path | None:
    """The local Hugging Face cache's snapshot folder of model ``ref`` that has a
    ``config.json`` (``refs/main`` first, else the newest), without any network."""
    found = _from_hf_cache(ref)
    return None if found is None else Path(found.location).parent


def _from_hf_cache(ref: str) -> ResolvedConfig | None:
    repo = hf_cache_dir() / ("models--" + ref.replace("/", "--"))
    snapshots = repo / "snapshots"
    try:
        if not snapshots.is_dir():
            return None
        main = repo / "refs" / "main"
        candidates = [snapshots / main.read_text().strip()] if main.is_file() else []
        candidates += sorted(snapshots.iterdir(), key=_mtime, reverse=True)
    except (OSError, UnicodeDecodeError):
        return None  # an unreadable cache entry is skipped, not fatal
    for snapshot in candidates:
        config = snapshot / "config.json"
        if config.is_file():
            return ResolvedConfig(ref, _read_config(config), "hf-cache", str(config))
    return None


@cache
def _known_entries() -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Shipped configs by canonical id, and every lower-cased id or alias → canonical id."""
    entries: dict[str, dict[str, Any]] = {}
    names: dict[str, str] = {}
    folder = resources.files("memlens.profiler") / "known_configs"
    for item in folder.iterdir():
        if item.name.endswith(".json"):
            entry = json.loads(item.read_text(encoding="utf-8"))
            entries[entry["id"]] = entry
            for name in (entry["id"], *entry["aliases"]):
                names[name.lower()] = entry["id"]
    return entries, names


def known_models() -> list[str]:
    """Canonical ids of the configs memlens ships."""
    return sorted(_known_entries()[0])


def _from_known(ref: str) -> ResolvedConfig | None:
    entries, names = _known_entries()
    model_id = names.get(ref.lower())
    if model_id is None:
        return None
    entry = entries[model_id]
    return ResolvedConfig(model_id, dict(entry["config"]), "built-in", f"memlens:{model_id}")


def _from_hub(ref: str, timeout_s: float) -> ResolvedConfig:
    import urllib.error  # only a hub look-up needs the HTTP stack
    import urllib.request

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    url = f"{endpoint}/{ref}/resolve/main/config.json"
    request = urllib.request.Request(url, headers={"User-Agent": "memlens"})
    if token := os.environ.get("HF_TOKEN"):
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            text = response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        hint = " (gated: set HF_TOKEN)" if exc.code in (401, 403) else ""
        raise ModelNotFoundError(
            f"the hub has no config.json for {ref!r}: HTTP {exc.code}{hint}"
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise ModelNotFoundError(
            f"{ref!r} is not available offline and the hub could not be reached within "
            f"{timeout_s:g} s ({exc}); {_LOCAL_HINT}"
        ) from None
    return ResolvedConfig(ref, parse_config(text, url), "hub", url)


_LOCAL_HINT = (
    "point MODEL at a local model directory or config.json, or fetch the config once with "
    "`hf download ID config.json`"
)


def resolve_config(
    ref: str, *, allow_network: bool = True, timeout_s: float = HUB_TIMEOUT_S
) -> ResolvedConfig:
    """Resolve a model id or path to its config, offline sources first.

    Raises ModelNotFoundError (with how to fix it) or ConfigError for a corrupt file.
    """
    ref = ref.strip()
    if not ref:
        raise ModelNotFoundError("empty model name: give a model id or a path to config.json")
    for source in (_from_path, _from_hf_cache, _from_known):
        if found := source(ref):
            return found
    if not _REPO_ID.match(ref):
        raise ModelNotFoundError(f"{ref!r} is neither a local path nor a model id; {_LOCAL_HINT}")
    if not allow_network or offline():
        raise ModelNotFoundError(
            f"{ref!r} is not in the local Hugging Face cache or memlens's table of known "
            f"models, and the hub is off (offline mode); {_LOCAL_HINT}"
        )
    return _from_hub(ref, timeout_s)
