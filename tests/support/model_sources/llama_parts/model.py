"""The Llama-style decoder, built from the layers of the other file."""

import torch
from torch import nn

from .layers import DecoderLayer, LlamaArgs, RMSNorm


class Llama(nn.Module):
    def __init__(self, params: LlamaArgs):
        super().__init__()
        self.params = params
        self.tok_embeddings = nn.Embedding(params.vocab_size, params.dim)
        self.layers = torch.nn.ModuleList()
        for layer_id in range(params.n_layers):
            self.layers.append(DecoderLayer(layer_id, params))
        self.norm = RMSNorm(params.dim, eps=params.norm_eps)
        self.output = nn.Linear(params.dim, params.vocab_size, bias=False)


def build():
    return Llama(LlamaArgs(n_layers=8, dim=1024, n_heads=16))
