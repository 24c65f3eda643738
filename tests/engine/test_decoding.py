"""Incremental decoding (memlens/engine/decoding.py) against transformers' own generate."""

from __future__ import annotations

import pytest
import torch

from memlens.engine.decoding import DecodeStats, Sampling, generate, pick_tokens, stream
from memlens.errors import UsageError
from tests.support.tiny_configs import build_model, tiny_config

PROMPT = torch.randint(3, 200, (2, 9), generator=torch.Generator().manual_seed(4))


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return build_model(tiny_config("llama"))


@pytest.mark.parametrize("name", ["llama", "gpt2", "gemma2-alternating"])
def test_greedy_matches_transformers_generate(name: str) -> None:
    model = build_model(tiny_config(name))
    model.generation_config.eos_token_id = None  # neither side stops early
    ours = generate(model, PROMPT, 12)
    with torch.no_grad():
        theirs = model.generate(
            PROMPT, attention_mask=torch.ones_like(PROMPT), max_new_tokens=12, do_sample=False
        )
    assert torch.equal(ours, theirs)


def test_stream_yields_one_step_at_a_time_and_fills_stats(model: torch.nn.Module) -> None:
    stats = DecodeStats()
    steps = stream(model, PROMPT[0], 5, stats=stats)
    first = next(steps)
    assert first.shape == (1,) and stats.new_tokens == 1 and stats.decode_s == 0
    rest = list(steps)
    assert len(rest) == 4 and stats.new_tokens == 5 and stats.prompt_tokens == 9
    assert stats.prefill_s > 0 and stats.decode_s > 0 and stats.decode_tokens_per_s > 0


def test_stops_when_every_sequence_has_ended(model: torch.nn.Module) -> None:
    prompt = PROMPT[:1]
    greedy = generate(model, prompt, 6)
    eos = int(greedy[0, prompt.shape[1] + 2])  # the third new token
    assert eos not in greedy[0, prompt.shape[1] : prompt.shape[1] + 2].tolist()
    out = generate(model, prompt, 6, eos_token_id=eos)
    assert out.shape[1] == prompt.shape[1] + 3 and int(out[0, -1]) == eos


def test_a_finished_sequence_pads_with_eos_while_others_go_on(model: torch.nn.Module) -> None:
    greedy = generate(model, PROMPT, 6)
    eos = int(greedy[0, PROMPT.shape[1] + 2])  # sequence 0's third new token
    assert eos not in greedy[1, PROMPT.shape[1] :].tolist()
    out = generate(model, PROMPT, 6, eos_token_id=eos)
    assert out.shape[1] == PROMPT.shape[1] + 6  # sequence 1 never ends
    assert bool((out[0, PROMPT.shape[1] + 2 :] == eos).all())


def test_sampling_is_reproducible_and_top_k_one_is_greedy(model: torch.nn.Module) -> None:
    hot = Sampling(temperature=1.5, top_p=0.9, seed=7)
    assert torch.equal(generate(model, PROMPT, 8, hot), generate(model, PROMPT, 8, hot))
    assert torch.equal(
        generate(model, PROMPT, 8, Sampling(top_k=1, seed=1)), generate(model, PROMPT, 8)
    )


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    generator = torch.Generator().manual_seed(0)
    seen = {int(pick_tokens(logits, Sampling(top_p=0.7), generator)) for _ in range(200)}
    assert seen == {0, 1}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": 0}, "temperature"),
        ({"top_k": 0}, "top_k"),
        ({"top_p": 1.5}, "top_p"),
    ],
)
def test_bad_sampling_settings(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Sampling(**kwargs)  # type: ignore[arg-type]


def test_bad_prompts(model: torch.nn.Module) -> None:
    with pytest.raises(UsageError, match="empty"):
        generate(model, torch.zeros(1, 0, dtype=torch.long), 4)
    with pytest.raises(UsageError, match="max_new_tokens"):
        generate(model, PROMPT, 0)
