"""A model of your own: memlens counts each layer's parameters and bytes as you type."""

import torch.nn as nn


class MLP(nn.Module):
    def __init__(self, hidden: int = 4096, inner: int = 11008):
        super().__init__()
        self.up = nn.Linear(4096, 11008)
        self.down = nn.Linear(11008, 4096, bias=False)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.down(self.act(self.up(x)))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(4096)
        self.attn = nn.MultiheadAttention(4096, 32, batch_first=True)
        self.mlp = MLP()
