"""Serve a chat model: memlens shows what loading it costs, right on the load line."""

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-2-7b-hf", dtype=torch.float32)
tokenizer = AutoTokenizer.from_pretrained("meta-llama/Llama-2-7b-hf")
small = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-0.5B", dtype=torch.bfloat16)


def reply(prompt: str) -> str:
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=256)
    return tokenizer.decode(out[0], skip_special_tokens=True)
