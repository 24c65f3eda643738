"""On-disk cache of exact estimates, keyed by config, options and memlens version."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from memlens import __version__

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """``$MEMLENS_CACHE_DIR``, else ``$XDG_CACHE_HOME/memlens``, else ``~/.cache/memlens``."""
    if explicit := os.environ.get("MEMLENS_CACHE_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "memlens"


def cache_key(kind: str, config: dict[str, Any], options: dict[str, Any]) -> str:
    """A stable hash of what determines a result."""
    payload = json.dumps(
        {"kind": kind, "config": config, "options": options, "memlens": __version__},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def load(key: str) -> Any | None:
    """The cached value, or None when absent or unreadable (a corrupt entry is dropped)."""
    path = cache_dir() / "estimates" / f"{key}.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        log.warning("dropping unreadable cache entry %s", path)
        path.unlink(missing_ok=True)
        return None


def store(key: str, value: Any) -> None:
    """Write atomically; a full or read-only disk only costs the cache."""
    folder = cache_dir() / "estimates"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{key}.{os.getpid()}.tmp"
        temporary.write_text(json.dumps(value))
        temporary.replace(folder / f"{key}.json")
    except OSError as exc:
        log.warning("cannot write the estimate cache: %s", exc)
