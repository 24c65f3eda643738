"""Training text: a UTF-8 file cut into token windows, the last tenth held out for the
eval loss."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from memlens.engine.tokens import TextCodec
from memlens.errors import UsageError

EVAL_SHARE = 0.1
"""Share of the tokens (at the end of the file) held out for the eval loss."""


def read_training_text(path: str | Path) -> str:
    """The text of ``path``; UsageError when it is missing, empty or not UTF-8 text."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise UsageError(f"--data {path} is a folder; give a UTF-8 text file") from None
    except OSError as exc:
        raise UsageError(f"--data {path} cannot be read: {exc.strerror or exc}") from None
    if b"\x00" in raw:
        raise UsageError(f"--data {path} is not text (it has NUL bytes); give a UTF-8 text file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"--data {path} is not UTF-8 text (byte {exc.start} does not decode)"
        ) from None
    if not text.strip():
        raise UsageError(f"--data {path} is empty; give it some training text")
    return text


@dataclass(frozen=True)
class TokenData:
    """Token ids to train on and to evaluate with, cut into windows of ``seq_len + 1``."""

    train: torch.Tensor
    """``(N,)`` int64 training ids."""
    eval: torch.Tensor
    """``(M,)`` int64 held-out ids."""
    seq_len: int

    @classmethod
    def from_text(cls, text: str, codec: TextCodec, seq_len: int) -> TokenData:
        """Tokenize and split; UsageError when the text is too short for one window each."""
        ids = torch.tensor(codec.encode(text), dtype=torch.long)  # (N,)
        held = max(seq_len + 1, int(ids.numel() * EVAL_SHARE))
        if ids.numel() < held + seq_len + 1:
            raise UsageError(
                f"the training text gives {ids.numel()} tokens; at --seq-len {seq_len} it "
                f"needs at least {held + seq_len + 1} (give more text or a shorter --seq-len)"
            )
        return cls(ids[:-held], ids[-held:], seq_len)

    def batch(self, size: int, generator: torch.Generator) -> torch.Tensor:
        """``(size, seq_len + 1)`` random training windows."""
        starts = torch.randint(
            0, self.train.numel() - self.seq_len, (size,), generator=generator
        ).tolist()
        return torch.stack([self.train[s : s + self.seq_len + 1] for s in starts])

    def eval_windows(self, limit: int = 8) -> torch.Tensor:
        """``(n, seq_len + 1)`` consecutive held-out windows, at most ``limit``."""
        step = self.seq_len + 1
        count = min(limit, self.eval.numel() // step)
        return self.eval[: count * step].view(count, step)
