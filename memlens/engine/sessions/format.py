"""How a chat session turns messages into token ids, one turn at a time.

A session feeds the model only what each turn adds, so a format answers: which ids open
the conversation (the system prompt), and which ids a user message adds after what the
session already holds. A tokenizer with a chat template renders the whole conversation
and feeds the text it adds to the previous rendering; any other tokenizer gets a plain
``System:/User:/Assistant:`` transcript.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from memlens.engine.tokens import HuggingFaceCodec, TextCodec

_log = logging.getLogger(__name__)


class ChatFormat(Protocol):
    """One session's view of its conversation as token ids."""

    def opening(self, system_prompt: str | None) -> list[int]:
        """Ids that start the conversation (may be empty)."""
        ...

    def turn(self, text: str) -> list[int]:
        """Ids a user message adds, up to where the assistant's reply begins; does not
        record the message (see :meth:`replied`)."""
        ...

    def replied(self, text: str, reply: str) -> None:
        """Record a finished exchange."""
        ...


class PlainFormat:
    """``System: …`` then ``User: …\\nAssistant:`` lines, for tokenizers without a chat
    template (the byte-level fixture)."""

    def __init__(self, codec: TextCodec) -> None:
        self._codec = codec
        self._turns = 0

    def opening(self, system_prompt: str | None) -> list[int]:
        return self._codec.encode(f"System: {system_prompt}\n") if system_prompt else []

    def turn(self, text: str) -> list[int]:
        separator = "\n" if self._turns else ""  # ends the previous reply's line
        return self._codec.encode(f"{separator}User: {text}\nAssistant:")

    def replied(self, text: str, reply: str) -> None:
        self._turns += 1


class TemplateFormat:
    """The tokenizer's own chat template: each turn feeds the text its rendering adds."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._messages: list[dict[str, str]] = []
        self._rendered = ""
        self._warned = False  # about a template that rewrites earlier turns (once)

    def _render(self, messages: list[dict[str, str]], prompt: bool) -> str:
        text: str = self._tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=prompt
        )
        return text

    def _encode(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=False))

    def opening(self, system_prompt: str | None) -> list[int]:
        if system_prompt:
            self._messages = [{"role": "system", "content": system_prompt}]
            self._rendered = self._render(self._messages, prompt=False)
        bos = self._tokenizer.bos_token
        if bos and not self._rendered.startswith(bos):
            self._rendered = bos + self._rendered  # templates without a system turn add it later
        return self._encode(self._rendered)

    def turn(self, text: str) -> list[int]:
        rendered = self._render([*self._messages, {"role": "user", "content": text}], True)
        # a template that re-renders earlier turns differently cannot be fed incrementally;
        # what it adds after the common part is the best continuation there is
        pairs = zip(self._rendered, rendered, strict=False)
        same = next((i for i, (a, b) in enumerate(pairs) if a != b), len(self._rendered))
        if same < len(self._rendered) and not self._warned:
            self._warned = True
            _log.warning(
                "the chat template renders earlier turns differently from what this session "
                "holds (the first %d of %d characters agree); the session goes on from its "
                "own history, so replies may differ from a fresh rendering",
                same,
                len(self._rendered),
            )
        return self._encode(rendered[same:])

    def replied(self, text: str, reply: str) -> None:
        asked = [*self._messages, {"role": "user", "content": text}]
        # what the session holds now: the reply's end-of-turn text comes with the next turn
        self._rendered = self._render(asked, prompt=True) + reply
        self._messages = [*asked, {"role": "assistant", "content": reply}]


def chat_format(codec: TextCodec) -> ChatFormat:
    """The tokenizer's chat template when it has one, else the plain transcript."""
    if isinstance(codec, HuggingFaceCodec) and getattr(codec.tokenizer, "chat_template", None):
        return TemplateFormat(codec.tokenizer)
    return PlainFormat(codec)
