"""Text ↔ token ids for the engine's CLI: a model folder's own tokenizer, or raw bytes.

A folder declares byte-level tokens with ``byte_tokenizer.json`` (``{"kind": "utf-8
bytes"}``: id = byte value), so the mode is recorded, never guessed from a name or a
vocabulary size. Otherwise the folder's Hugging Face tokenizer files are loaded (offline).
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from memlens.errors import ConfigError, ModelNotFoundError

BYTE_TOKENIZER = "byte_tokenizer.json"
TOKENIZER_FILES = (
    BYTE_TOKENIZER,
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
)
"""Files whose presence means a folder has a tokenizer of its own."""
COMPANION_FILES = (
    *TOKENIZER_FILES,
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "generation_config.json",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.tiktoken",
    "preprocessor_config.json",
)
"""Tokenizer, chat-template and generation files that travel with a model when memlens
writes a compressed copy (with the ``additional_chat_templates/`` folder)."""
CHAT_TEMPLATES_DIR = "additional_chat_templates"


class TextCodec(Protocol):
    """What the CLI needs of a tokenizer."""

    eos_token_id: int | None

    def encode(self, text: str) -> list[int]: ...

    def stream_decode(self, ids: Iterable[int]) -> Iterator[str]:
        """Text pieces as ids arrive (never splitting a character)."""
        ...


class ByteCodec:
    """UTF-8 bytes as token ids 0–255."""

    eos_token_id: int | None = None

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def stream_decode(self, ids: Iterable[int]) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        for token in ids:
            if piece := decoder.decode(bytes([token])):
                yield piece
        if tail := decoder.decode(b"", final=True):
            yield tail


class HuggingFaceCodec:
    """A folder's transformers tokenizer."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        """The transformers tokenizer (encoders need its padding and attention masks)."""
        self.eos_token_id: int | None = tokenizer.eos_token_id

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text))

    def stream_decode(self, ids: Iterable[int]) -> Iterator[str]:
        seen: list[int] = []
        shown = ""
        for token in ids:
            seen.append(token)
            text = self.tokenizer.decode(seen, skip_special_tokens=True)
            if not text.endswith("\ufffd") and len(text) > len(shown):
                yield text[len(shown) :]
                shown = text


def load_codec(folder: str | Path) -> TextCodec:
    """The tokenizer a model folder declares; ModelNotFoundError if it has none."""
    folder = Path(folder)
    marker = folder / BYTE_TOKENIZER
    if marker.is_file():
        try:
            kind = json.loads(marker.read_text()).get("kind")
        except (OSError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{marker} is unreadable: {exc}") from None
        if kind != "utf-8 bytes":
            raise ConfigError(f"{marker}: unknown byte tokenizer kind {kind!r}")
        return ByteCodec()
    if any((folder / name).is_file() for name in TOKENIZER_FILES[1:]):
        from memlens._transformers import transformers_module

        tokenizer = transformers_module().AutoTokenizer.from_pretrained(
            folder, local_files_only=True
        )
        return HuggingFaceCodec(tokenizer)
    raise ModelNotFoundError(
        f"{folder} has no tokenizer (tokenizer.json or {BYTE_TOKENIZER}); "
        "copy the base model's tokenizer files into it"
    )
