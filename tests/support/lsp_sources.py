"""Python sources the language server tests analyse: realistic model code (Hugging Face
loading, a nanoGPT-style module) and a short serving script, plus every memlens module as a
corpus of real files."""

from __future__ import annotations

from pathlib import Path

HF_LOADING = """\
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, pipeline

MODEL_ID = "mistralai/Mistral-7B-v0.1"
QUANT = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4")

tokenizer = AutoTokenizer.from_pretrained(MODEL_ID)
model = AutoModelForCausalLM.from_pretrained(MODEL_ID, torch_dtype=torch.bfloat16,
                                             device_map="auto")
quantized = AutoModelForCausalLM.from_pretrained(MODEL_ID, quantization_config=QUANT)
eight = AutoModelForCausalLM.from_pretrained("gpt2", load_in_8bit=True)
remote = AutoModelForCausalLM.from_pretrained("org/custom", trust_remote_code=True)
pipe = pipeline("text-generation", model="Qwen/Qwen2.5-0.5B", dtype="auto")

def answer(prompt: str, name: str) -> str:
    local = AutoModelForCausalLM.from_pretrained(name)
    out = model.generate(**tokenizer(prompt, return_tensors="pt"), max_new_tokens=2 * 128)
    model.to(torch.float16)
    return tokenizer.decode(out[0])
"""
"""Hugging Face loading code: dtypes, quantization, a pipeline, a remote-code load."""

NANOGPT = """\
import torch
import torch.nn as nn
from dataclasses import dataclass

N_EMBD = 768
N_LAYER = 12
VOCAB = 50304

class CausalSelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_attn = nn.Linear(N_EMBD, 3 * N_EMBD)
        self.c_proj = nn.Linear(N_EMBD, N_EMBD)

class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        hidden = 4 * N_EMBD
        self.c_fc = nn.Linear(N_EMBD, hidden)
        self.c_proj = nn.Linear(hidden, N_EMBD)

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(N_EMBD)
        self.attn = CausalSelfAttention()
        self.ln_2 = nn.LayerNorm(N_EMBD)
        self.mlp = MLP()

class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, N_EMBD)
        self.wpe = nn.Embedding(1024, N_EMBD)
        self.h = nn.ModuleList([Block() for _ in range(N_LAYER)])
        self.ln_f = nn.LayerNorm(N_EMBD)
        self.lm_head = nn.Linear(N_EMBD, config.vocab_size, bias=False)
"""
"""nanoGPT-style ``nn.Module`` classes built from module constants."""

SERVE = """\
from transformers import AutoModelForCausalLM
import torch.nn as nn

model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-2-7b-hf", dtype=torch.float32)
out = model.generate(ids, max_new_tokens=256)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.Linear(4096, 11008)
        self.down = nn.Linear(11008, 4096, bias=False)
"""
"""A serving script: a 7B load in float32, a ``generate``, a small ``nn.Module``."""


def corpus() -> list[str]:
    """The snippets above and the text of every memlens module."""
    memlens = Path(__file__).parents[2] / "memlens"
    return [HF_LOADING, NANOGPT, SERVE, *(p.read_text() for p in sorted(memlens.rglob("*.py")))]
