"""Chat formats of sessions (memlens/engine/sessions/format.py): what each turn feeds adds
up to the whole conversation as the tokenizer's template renders it."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from memlens.engine.sessions.format import PlainFormat, TemplateFormat, chat_format
from memlens.engine.tokens import ByteCodec, HuggingFaceCodec


class _TemplateTokenizer:
    """A stand-in for a transformers tokenizer with a chat template (bytes as ids)."""

    bos_token = "<s>"
    eos_token_id = 0
    chat_template = "(stand-in)"

    def apply_chat_template(
        self, messages: list[dict[str, str]], tokenize: bool, add_generation_prompt: bool
    ) -> str:
        assert not tokenize
        text = "<s>" + "".join(f"<|{m['role']}|>\n{m['content']}<|end|>\n" for m in messages)
        return text + ("<|assistant|>\n" if add_generation_prompt else "")

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        assert not add_special_tokens  # mid-conversation pieces never get a BOS
        return list(text.encode())

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return bytes(ids).decode()


def _text(ids: list[int]) -> str:
    return bytes(ids).decode()


def test_template_turns_add_up_to_the_rendered_conversation() -> None:
    tokenizer: Any = _TemplateTokenizer()
    form = chat_format(HuggingFaceCodec(tokenizer))
    assert isinstance(form, TemplateFormat)
    fed = form.opening("Be brief.")
    assert _text(fed) == "<s><|system|>\nBe brief.<|end|>\n"
    fed += form.turn("first")
    fed += list(b"Hi there")  # the reply tokens the model produced
    form.replied("first", "Hi there")
    second = form.turn("second")
    assert _text(second) == "<|end|>\n<|user|>\nsecond<|end|>\n<|assistant|>\n"
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "Hi there"},
        {"role": "user", "content": "second"},
    ]
    assert _text(fed + second) == tokenizer.apply_chat_template(messages, False, True)


def test_template_without_a_system_prompt_opens_with_bos_only() -> None:
    form = TemplateFormat(_TemplateTokenizer())
    assert _text(form.opening(None)) == "<s>"
    assert _text(form.turn("q")) == "<|user|>\nq<|end|>\n<|assistant|>\n"


def test_plain_transcript_for_tokenizers_without_a_template() -> None:
    form = chat_format(ByteCodec())
    assert isinstance(form, PlainFormat)
    assert form.opening(None) == []
    assert _text(form.opening("Be brief.")) == "System: Be brief.\n"
    assert _text(form.turn("first")) == "User: first\nAssistant:"
    form.replied("first", " ok")
    assert _text(form.turn("second")) == "\nUser: second\nAssistant:"


class _ForgetfulTokenizer(_TemplateTokenizer):
    """A template that drops earlier assistant replies when it re-renders (as templates
    that hide reasoning do)."""

    def apply_chat_template(
        self, messages: list[dict[str, str]], tokenize: bool, add_generation_prompt: bool
    ) -> str:
        last = len(messages) - 1
        kept = [m for i, m in enumerate(messages) if m["role"] != "assistant" or i == last]
        return super().apply_chat_template(kept, tokenize, add_generation_prompt)


def test_a_template_that_rewrites_earlier_turns_is_warned_about_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    form = TemplateFormat(_ForgetfulTokenizer())
    form.opening("Be brief.")
    form.turn("first")
    form.replied("first", "Hi there")
    with caplog.at_level(logging.WARNING, logger="memlens.engine.sessions.format"):
        second = form.turn("second")
        form.turn("second")
    # it feeds what follows the first disagreement: the new message is in it
    assert _text(second).endswith("\nsecond<|end|>\n<|assistant|>\n")
    (record,) = caplog.records
    assert "renders earlier turns differently" in record.getMessage()
