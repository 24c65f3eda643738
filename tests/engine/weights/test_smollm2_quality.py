"""INT8 on a real chat model (fixture 3, SmolLM2-135M-Instruct): greedy decoding through the
fast paths (a dense prefill of the templated prompt, decode steps on the native INT8
kernel where it runs) gives fp32's answer token for token.

Only the capital question is pinned: on "Name three primary colours." INT8 leaves fp32's
greedy path within ten words whichever path computes it (measured: at the ninth word with
float32 activations, where the per-channel weight rounding alone flips an argmax; at the
fifth with the dense bf16 prefill), and bf16 at the tenth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from memlens.engine import Int8WeightConfig, compress_, generate
from memlens.engine.loading import load_model
from memlens.kernels import dense
from tests.support.smollm2 import CAPITAL_QUESTION

NEW_TOKENS = 12


def test_int8_greedy_answer_equals_fp32s(smollm2_dir: Path) -> None:
    import transformers

    tokenizer: Any = transformers.AutoTokenizer.from_pretrained(smollm2_dir, local_files_only=True)
    ids: torch.Tensor = tokenizer.apply_chat_template(
        [{"role": "user", "content": CAPITAL_QUESTION}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )["input_ids"]
    assert ids.shape[1] >= dense.INT8_DENSE_ROWS  # the prompt's prefill takes the dense path
    fp32 = load_model(smollm2_dir, torch.float32).model
    expected = generate(fp32, ids, NEW_TOKENS)[0, ids.shape[1] :]
    int8 = compress_(load_model(smollm2_dir, torch.bfloat16).model, Int8WeightConfig())
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # decode steps take memlens's native kernel where it runs
        actual = generate(int8, ids, NEW_TOKENS)[0, ids.shape[1] :]
    finally:
        torch.set_num_threads(threads)
    assert "Paris" in tokenizer.decode(expected)
    assert actual.tolist() == expected.tolist()
