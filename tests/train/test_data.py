"""Training data: bad files give one clear error; good text splits into windows."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from memlens.engine.tokens import ByteCodec
from memlens.errors import UsageError
from memlens.train.data import TokenData, read_training_text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"  \n\t\n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not text"),
        ("caf\u00e9 cr\u00e8me".encode("latin-1"), "not UTF-8"),
    ],
    ids=["empty", "whitespace", "binary", "latin-1"],
)
def test_bad_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "data.txt"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=message):
        read_training_text(path)
    assert path.read_bytes() == content


def test_missing_file_and_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot be read"):
        read_training_text(tmp_path / "missing.txt")
    with pytest.raises(UsageError, match="is a folder"):
        read_training_text(tmp_path)


def test_text_splits_into_train_and_held_out_windows() -> None:
    data = TokenData.from_text("x = 1\n" * 200, ByteCodec(), seq_len=16)
    assert data.train.numel() + data.eval.numel() == 1200
    assert data.eval.numel() == 120
    batch = data.batch(3, torch.Generator().manual_seed(0))
    assert batch.shape == (3, 17)
    assert data.eval_windows().shape == (7, 17)


def test_text_too_short_for_a_window_is_refused() -> None:
    with pytest.raises(UsageError, match="--seq-len"):
        TokenData.from_text("short", ByteCodec(), seq_len=16)
