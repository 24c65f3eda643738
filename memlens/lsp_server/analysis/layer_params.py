"""Parameter counts of ``torch.nn`` layers from their constructor arguments, and the
``torch.nn`` modules that hold none.

Each formula takes the bound arguments (static values or None when unknown) and returns
the parameter count, or None when an argument it needs is unknown.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Args = Mapping[str, Any]


def _ints(*values: Any) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values)


def _shape_numel(shape: Any) -> int | None:
    if _ints(shape):
        return int(shape)
    if isinstance(shape, tuple) and shape and _ints(*shape):
        return int(math.prod(shape))
    return None


def _linear(a: Args) -> int | None:
    if not _ints(a["in_features"], a["out_features"]) or a["bias"] not in (True, False):
        return None
    return int(a["in_features"] * a["out_features"] + (a["out_features"] if a["bias"] else 0))


def _embedding(a: Args) -> int | None:
    return (
        a["num_embeddings"] * a["embedding_dim"]
        if _ints(a["num_embeddings"], a["embedding_dim"])
        else None
    )


def _conv(dims: int) -> Callable[[Args], int | None]:
    def count(a: Args) -> int | None:
        kernel = a["kernel_size"]
        kernel = (kernel,) * dims if _ints(kernel) else kernel
        if not (
            _ints(a["in_channels"], a["out_channels"], a["groups"])
            and isinstance(kernel, tuple)
            and len(kernel) == dims
            and _ints(*kernel)
            and a["bias"] in (True, False)
        ):
            return None
        if a["groups"] == 0 or a["in_channels"] % a["groups"]:
            return None
        weight = a["out_channels"] * (a["in_channels"] // a["groups"]) * math.prod(kernel)
        return int(weight + (a["out_channels"] if a["bias"] else 0))

    return count


def _layer_norm(a: Args) -> int | None:
    size = _shape_numel(a["normalized_shape"])
    if (
        size is None
        or a["elementwise_affine"] not in (True, False)
        or a["bias"] not in (True, False)
    ):
        return None
    return (size + (size if a["bias"] else 0)) if a["elementwise_affine"] else 0


def _rms_norm(a: Args) -> int | None:
    size = _shape_numel(a["normalized_shape"])
    if size is None or a["elementwise_affine"] not in (True, False):
        return None
    return size if a["elementwise_affine"] else 0


def _multihead_attention(a: Args) -> int | None:
    embed, kdim, vdim = a["embed_dim"], a["kdim"], a["vdim"]
    kdim = embed if kdim is None else kdim
    vdim = embed if vdim is None else vdim
    if not _ints(embed, kdim, vdim, a["num_heads"]) or a["bias"] not in (True, False):
        return None
    projections = embed * (embed + kdim + vdim) + embed * embed  # q, k, v in; out
    biases = 4 * embed if a["bias"] else 0
    bias_kv = 2 * embed if a["add_bias_kv"] is True else 0
    return int(projections + biases + bias_kv)


@dataclass(frozen=True)
class LayerSignature:
    """A layer's constructor parameters (in order, with defaults) and its formula."""

    parameters: tuple[str, ...]
    defaults: Mapping[str, Any]
    count: Callable[[Args], int | None]


_CONV_PARAMS = (
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "padding",
    "dilation",
    "groups",
    "bias",
)
_CONV_DEFAULTS = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True}

LAYERS: dict[str, LayerSignature] = {
    "Linear": LayerSignature(("in_features", "out_features", "bias"), {"bias": True}, _linear),
    "Embedding": LayerSignature(
        ("num_embeddings", "embedding_dim", "padding_idx"), {"padding_idx": None}, _embedding
    ),
    "Conv1d": LayerSignature(_CONV_PARAMS, _CONV_DEFAULTS, _conv(1)),
    "Conv2d": LayerSignature(_CONV_PARAMS, _CONV_DEFAULTS, _conv(2)),
    "LayerNorm": LayerSignature(
        ("normalized_shape", "eps", "elementwise_affine", "bias"),
        {"eps": 1e-5, "elementwise_affine": True, "bias": True},
        _layer_norm,
    ),
    "RMSNorm": LayerSignature(
        ("normalized_shape", "eps", "elementwise_affine"),
        {"eps": None, "elementwise_affine": True},
        _rms_norm,
    ),
    "MultiheadAttention": LayerSignature(
        (
            "embed_dim",
            "num_heads",
            "dropout",
            "bias",
            "add_bias_kv",
            "add_zero_attn",
            "kdim",
            "vdim",
        ),
        {
            "dropout": 0.0,
            "bias": True,
            "add_bias_kv": False,
            "add_zero_attn": False,
            "kdim": None,
            "vdim": None,
        },
        _multihead_attention,
    ),
}

PARAMETERLESS = frozenset(
    {
        "ReLU",
        "GELU",
        "SiLU",
        "Tanh",
        "Sigmoid",
        "Softmax",
        "LogSoftmax",
        "Dropout",
        "Identity",
        "Flatten",
        "Unflatten",
        "Sequential",
        "ModuleList",
        "ModuleDict",
        "LeakyReLU",
        "Mish",
        "ELU",
        "Softplus",
        "AvgPool1d",
        "AvgPool2d",
        "MaxPool1d",
        "MaxPool2d",
        "AdaptiveAvgPool1d",
        "AdaptiveAvgPool2d",
        "Upsample",
        "ZeroPad2d",
        "Hardswish",
        "Hardtanh",
        "ReLU6",
    }
)
"""``torch.nn`` modules that hold no parameters, and containers whose contents are counted."""
