"""Structured pruning with L0 gates (hard-concrete, Louizos et al. 2018).

:func:`add_gates` puts one gate on every query head (scaling that head's slice of the
attention output before ``o_proj``) and on every MLP channel (scaling ``down_proj``'s
input). While training, gates are sampled from the hard-concrete distribution and
:meth:`PruningGates.penalty` pulls the expected share of gated parameters that are
switched off towards the target sparsity. For the last ``recover_fraction`` of the steps
the gates are fixed (:meth:`PruningGates.fix_`) at what pruning will keep, so the remaining
weights learn to do without what is removed. In eval mode the gates are those hard values:
the gated model computes what the pruned one will. :func:`prune` then removes the weakest
heads and channels physically: the result is a smaller dense model of the same
transformers class, its config updated, that saves, loads and estimates like any other.

transformers configs hold one head count and one MLP width for all layers, so every
layer keeps the same number of heads (per key/value group, with grouped-query
attention) and of channels; the gates choose *which* ones per layer. Supported: the
Llama-style blocks (``self_attn.{q,k,v,o}_proj``, ``mlp.{gate,up,down}_proj``) of
llama, mistral, qwen2 and similar families.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from memlens.errors import UnsupportedArchitectureError, UsageError

_BETA = 2 / 3  # hard-concrete temperature and stretch interval, as in the L0 paper
_GAMMA = -0.1
_ZETA = 1.1
_CHANNEL_MULTIPLE = 16  # kept MLP widths stay INT4-compressible (outputs in multiples of 16)


@dataclass(frozen=True)
class PruneConfig:
    """Target and training of the L0 gates."""

    sparsity: float
    """Share of the prunable parameters (query/output head slices, MLP channels) to
    remove, in (0, 1)."""
    penalty: float = 10.0
    """Weight of ``(expected sparsity - target)²`` in the loss."""
    gate_lr: float = 0.1
    """Learning rate of the gates' log-alpha (they must move within a short run)."""
    init_log_alpha: float = 3.0
    """Initial log-alpha: gates start almost surely open."""
    recover_fraction: float = 0.25
    """Share of the training steps, at the end, trained with the gates fixed at what
    pruning keeps (the rest closed): the kept weights recover from the removal."""
    version: int = 2

    def __post_init__(self) -> None:
        if not 0 < self.sparsity < 1:
            raise UsageError(f"the pruning sparsity must lie in (0, 1), got {self.sparsity}")
        if not 0 <= self.recover_fraction < 1:
            raise UsageError(
                f"the recovery share of the steps must lie in [0, 1), got {self.recover_fraction}"
            )
        if self.penalty < 0 or self.gate_lr <= 0:
            raise UsageError("the pruning penalty must be ≥ 0 and the gate learning rate > 0")


class L0Gate(nn.Module):
    """A tensor of hard-concrete gates with learned ``log_alpha``."""

    def __init__(self, shape: tuple[int, ...], init: float) -> None:
        super().__init__()
        self.log_alpha = nn.Parameter(torch.full(shape, init))

    def forward(self) -> torch.Tensor:
        """Gate values in [0, 1]: sampled while training, their median in eval mode."""
        if self.training:
            u = torch.rand_like(self.log_alpha).clamp(1e-6, 1 - 1e-6)
            s = torch.sigmoid((u.log() - (1 - u).log() + self.log_alpha) / _BETA)
        else:
            s = torch.sigmoid(self.log_alpha)
        return (s * (_ZETA - _GAMMA) + _GAMMA).clamp(0, 1)

    def kept(self, count: int, groups: int = 1) -> torch.Tensor:
        """Indices of the ``count`` largest gates of each row's ``groups`` equal parts,
        ascending: ``(rows, groups · count)``."""
        rows = self.log_alpha.detach().view(self.log_alpha.shape[0], groups, -1)
        per_group = rows.shape[-1]
        top = rows.topk(count, dim=-1).indices.sort(dim=-1).values  # (rows, groups, count)
        offsets = torch.arange(groups)[None, :, None] * per_group
        return (top + offsets).flatten(1)

    def open_probability(self) -> torch.Tensor:
        """``P(gate ≠ 0)`` per gate (differentiable)."""
        return torch.sigmoid(self.log_alpha - _BETA * math.log(-_GAMMA / _ZETA))


@dataclass(frozen=True)
class _Shape:
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int


def _blocks(model: nn.Module) -> list[nn.Module]:
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    ok = isinstance(layers, nn.ModuleList) and all(
        hasattr(block, "self_attn") and hasattr(block, "mlp") for block in layers
    )
    if not ok:
        raise UnsupportedArchitectureError(
            f"structured pruning supports Llama-style decoders (model.layers[i].self_attn/"
            f"mlp); {type(model).__name__} is not one"
        )
    return list(layers)  # type: ignore[arg-type]


def _shape(model: nn.Module) -> _Shape:
    config: Any = model.config
    heads = int(config.num_attention_heads)
    hidden = int(config.hidden_size)
    return _Shape(
        layers=len(_blocks(model)),
        hidden=hidden,
        heads=heads,
        kv_heads=int(getattr(config, "num_key_value_heads", None) or heads),
        head_dim=int(getattr(config, "head_dim", None) or hidden // heads),
        intermediate=int(config.intermediate_size),
    )


class PruningGates(nn.Module):
    """The gates of one model: ``heads (layers, heads)`` and ``channels (layers, I)``."""

    def __init__(self, model: nn.Module, config: PruneConfig) -> None:
        super().__init__()
        self.config = config
        self.shape = _shape(model)
        s = self.shape
        self.heads = L0Gate((s.layers, s.heads), config.init_log_alpha)
        self.channels = L0Gate((s.layers, s.intermediate), config.init_log_alpha)
        self._fixed: tuple[torch.Tensor, torch.Tensor] | None = None
        self._handles: list[Any] = []
        for index, block in enumerate(_blocks(model)):
            attn_out: nn.Module = block.self_attn.o_proj  # type: ignore[union-attr, assignment]
            mlp_down: nn.Module = block.mlp.down_proj  # type: ignore[union-attr, assignment]
            self._handles.append(attn_out.register_forward_pre_hook(self._gate_heads(index)))
            self._handles.append(mlp_down.register_forward_pre_hook(self._gate_channels(index)))
        self.train(model.training)

    def _gate_heads(self, index: int) -> Any:
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
            x = args[0]  # (B, T, H·D)
            z = self.values()[0][index]  # (H,)
            heads = x.view(*x.shape[:-1], self.shape.heads, self.shape.head_dim)  # (B, T, H, D)
            gated = heads * z[:, None].to(x.dtype)
            return (gated.flatten(-2), *args[1:])  # (B, T, H·D)

        return hook

    def _gate_channels(self, index: int) -> Any:
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
            x = args[0]  # (B, T, I)
            return (x * self.values()[1][index].to(x.dtype), *args[1:])

        return hook

    def values(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Head and channel gate values, ``(L, H)`` and ``(L, I)``: sampled while training
        and not fixed; else the hard values pruning leaves (the median of each kept gate,
        0 for every removed one)."""
        if self._fixed is not None:
            return self._fixed
        if self.training:
            return self.heads(), self.channels()
        return self._hard_values()

    def kept(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices of the query heads ``(L, kept heads)`` and MLP channels ``(L, kept
        channels)`` pruning keeps: the largest gates, as many as the target allows."""
        heads_kept, channels_kept = _kept_counts(self)
        s = self.shape
        groups = s.kv_heads if s.heads // s.kv_heads > 1 else 1
        return self.heads.kept(heads_kept, groups), self.channels.kept(channels_kept)

    @torch.no_grad()
    def _hard_values(self) -> tuple[torch.Tensor, torch.Tensor]:
        was_training = self.training
        self.heads.eval()
        self.channels.eval()
        heads, channels = self.kept()
        hard = tuple(
            torch.zeros_like(z).scatter_(1, index, z.gather(1, index))
            for z, index in ((self.heads(), heads), (self.channels(), channels))
        )
        self.heads.train(was_training)
        self.channels.train(was_training)
        return hard[0], hard[1]

    def fix_(self) -> None:
        """From now on, train and evaluate with the hard values pruning leaves (the gates
        stop learning; :meth:`penalty` is 0)."""
        self._fixed = self._hard_values()
        for param in self.parameters():
            param.requires_grad_(False)

    @contextlib.contextmanager
    def opened(self) -> Iterator[None]:
        """Every gate fully open inside the block: the model as it was before gating."""
        kept = self._fixed
        self._fixed = (
            torch.ones_like(self.heads.log_alpha),
            torch.ones_like(self.channels.log_alpha),
        )
        try:
            yield
        finally:
            self._fixed = kept

    @property
    def fixed(self) -> bool:
        """Whether :meth:`fix_` has run."""
        return self._fixed is not None

    def _weights(self) -> tuple[float, float]:
        """Parameters one head gate and one channel gate switch off."""
        return 2.0 * self.shape.hidden * self.shape.head_dim, 3.0 * self.shape.hidden

    def expected_sparsity(self) -> torch.Tensor:
        """Expected share of gated parameters switched off (differentiable)."""
        head_w, channel_w = self._weights()
        closed = (
            head_w * (1 - self.heads.open_probability()).sum()
            + channel_w * (1 - self.channels.open_probability()).sum()
        )
        total = head_w * self.heads.log_alpha.numel() + channel_w * self.channels.log_alpha.numel()
        return closed / total

    def penalty(self) -> torch.Tensor:
        """``penalty · (expected sparsity - target)²``, added to the training loss (0 once
        the gates are fixed)."""
        if self._fixed is not None:
            return torch.zeros(())
        gap = self.expected_sparsity() - self.config.sparsity
        return self.config.penalty * gap * gap

    def remove_hooks(self) -> None:
        """Take the gates out of the model's forward pass."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def _kept_counts(gates: PruningGates) -> tuple[int, int]:
    """Heads kept per key/value group and channels kept per layer, meeting the target
    share of gated parameters as closely as the uniform counts allow."""
    s, target = gates.shape, gates.config.sparsity
    per_group = s.heads // s.kv_heads if s.heads // s.kv_heads > 1 else s.heads
    heads_kept = max(1, round((1 - target) * per_group))
    head_w, channel_w = gates._weights()
    total = head_w * s.heads + channel_w * s.intermediate
    heads_removed = (per_group - heads_kept) * (s.heads // per_group) * head_w
    channels_removed = max(0.0, target * total - heads_removed) / channel_w
    channels = s.intermediate - round(channels_removed / _CHANNEL_MULTIPLE) * _CHANNEL_MULTIPLE
    return heads_kept, max(_CHANNEL_MULTIPLE, min(s.intermediate, channels))


@torch.no_grad()
def prune(model: nn.Module, gates: PruningGates) -> nn.Module:
    """A new, smaller dense model of ``model``'s class: per layer the heads and channels
    with the largest gates, their gate values folded into ``o_proj``/``down_proj``.
    ``model``'s LoRA adapters must be merged first (``merge_lora_``)."""
    from transformers.initialization import no_init_weights

    s = gates.shape
    gates.remove_hooks()
    gates.eval()
    head_z, channel_z = gates.values()  # (L, H), (L, I)
    kept_heads, kept_channels = gates.kept()  # (L, kept heads), (L, kept channels)
    grouped = s.heads // s.kv_heads > 1
    state = {k: v.detach() for k, v in model.state_dict().items()}
    d = s.head_dim
    for index in range(s.layers):
        prefix = f"model.layers.{index}."
        heads = kept_heads[index]
        rows = (heads[:, None] * d + torch.arange(d)).reshape(-1)  # (kept·D,)
        _select(state, prefix + "self_attn.q_proj", rows, dim=0)
        if not grouped:
            _select(state, prefix + "self_attn.k_proj", rows, dim=0)
            _select(state, prefix + "self_attn.v_proj", rows, dim=0)
        scale = head_z[index, heads].repeat_interleave(d)  # (kept·D,)
        _select(state, prefix + "self_attn.o_proj", rows, dim=1, scale=scale)
        channels = kept_channels[index]
        _select(state, prefix + "mlp.gate_proj", channels, dim=0)
        _select(state, prefix + "mlp.up_proj", channels, dim=0)
        _select(state, prefix + "mlp.down_proj", channels, dim=1, scale=channel_z[index, channels])
    config: Any = copy.deepcopy(model.config)
    config.num_attention_heads = kept_heads.shape[1]
    config.num_key_value_heads = s.kv_heads if grouped else kept_heads.shape[1]
    config.head_dim = d
    config.intermediate_size = kept_channels.shape[1]
    with no_init_weights():
        pruned: nn.Module = type(model)(config)
    pruned.load_state_dict(state, strict=True)
    return pruned.to(next(model.parameters()).dtype).train(model.training)


def _select(
    state: dict[str, torch.Tensor],
    name: str,
    index: torch.Tensor,
    dim: int,
    scale: torch.Tensor | None = None,
) -> None:
    weight = state[name + ".weight"].index_select(dim, index)
    if scale is not None:  # the gate's value folded into the consuming matrix's columns
        weight = weight * scale.to(weight.dtype)[None, :]
    state[name + ".weight"] = weight.contiguous()
    if dim == 0 and name + ".bias" in state:
        state[name + ".bias"] = state[name + ".bias"].index_select(0, index)


def add_gates(model: nn.Module, config: PruneConfig) -> PruningGates:
    """Hook L0 gates into ``model``'s forward pass; train their ``parameters()`` beside the
    model's (at ``config.gate_lr``) and add :meth:`PruningGates.penalty` to the loss."""
    return PruningGates(model, config)


def parameter_count(model: nn.Module) -> int:
    """Parameters of ``model``, each shared tensor counted once."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
