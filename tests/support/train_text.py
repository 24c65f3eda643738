"""Training text on disk for the ``memlens train`` job and CLI tests: the start of the
byte-level fixture's committed held-out sample (identical on every machine)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.fixtures.byte_llama_model import heldout_text

TRAIN_TEXT_CHARS = 8192


def write_train_text(folder: Path, chars: int = TRAIN_TEXT_CHARS) -> Path:
    """``folder/train.txt`` with ``chars`` characters of Python source."""
    path = folder / "train.txt"
    path.write_text(heldout_text()[:chars], encoding="utf-8")
    return path
