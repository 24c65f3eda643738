"""L0-gated structured pruning: gates start open, the pruned model is a smaller dense
model of the same class whose parameter count is what ``memlens estimate`` says for its
new config, the gated model in eval mode computes what the pruned one does (whatever the
gates learned), and fixed gates stop learning while the kept weights recover."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from memlens.engine.loading import load_model
from memlens.errors import UnsupportedArchitectureError, UsageError
from memlens.profiler.estimate import analytic_estimate
from memlens.train.pruning import PruneConfig, add_gates, parameter_count, prune
from tests.support.small_llama import SMALL_LLAMA_CONFIG
from tests.support.tiny_configs import build_model

IDS = torch.tensor([[3, 14, 15, 92, 65, 35, 89, 79]])


def _model(**changes: int) -> nn.Module:
    torch.manual_seed(0)
    return build_model({**SMALL_LLAMA_CONFIG, **changes}).float().eval()


def test_gates_start_open() -> None:
    model = _model()
    gates = add_gates(model, PruneConfig(0.3))
    gates.heads.eval()
    gates.channels.eval()
    assert bool((gates.heads() == 1).all()) and bool((gates.channels() == 1).all())
    assert float(gates.expected_sparsity().detach()) < 0.02


def test_penalty_pulls_towards_the_target() -> None:
    model = _model()
    gates = add_gates(model, PruneConfig(0.5))
    optimizer = torch.optim.Adam(gates.parameters(), lr=0.2)
    for _ in range(40):
        gates.penalty().backward()
        optimizer.step()
        optimizer.zero_grad()
    assert abs(float(gates.expected_sparsity().detach()) - 0.5) < 0.05


@pytest.mark.parametrize("sparsity", [0.3, 0.5])
def test_pruned_parameters_equal_the_estimate_for_the_new_config(
    sparsity: float, tmp_path: Path
) -> None:
    model = _model()
    gates = add_gates(model, PruneConfig(sparsity))
    pruned = prune(model, gates)
    assert type(pruned) is type(model)
    config = pruned.config.to_dict()  # type: ignore[operator]
    assert config["num_attention_heads"] < SMALL_LLAMA_CONFIG["num_attention_heads"]
    assert config["intermediate_size"] < SMALL_LLAMA_CONFIG["intermediate_size"]
    (estimate,) = analytic_estimate(config, "pruned")
    assert parameter_count(pruned) == estimate.params
    assert parameter_count(pruned) < parameter_count(model)
    pruned.save_pretrained(tmp_path, safe_serialization=True)  # type: ignore[operator]
    loaded = load_model(tmp_path, torch.float32).model
    with torch.no_grad():
        torch.testing.assert_close(loaded(IDS).logits, pruned(IDS).logits)


def test_removing_closed_gates_keeps_the_function() -> None:
    model = _model()
    gates = add_gates(model, PruneConfig(0.5))
    with torch.no_grad():  # close exactly what pruning at 50% removes: 1 of 2 heads per
        gates.heads.log_alpha[:, 1::2] = -20.0  # key/value group, and the top channels
        gates.channels.log_alpha[:, 160:] = -20.0
        gates.channels.log_alpha[:, :160] = 20.0
    gates.eval()
    with torch.no_grad():
        gated = model(IDS).logits
        pruned = prune(model, gates).eval()
        assert pruned.config.intermediate_size == 160  # type: ignore[union-attr]
        torch.testing.assert_close(pruned(IDS).logits, gated, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("sparsity", [0.3, 0.5])
def test_gated_eval_computes_what_the_pruned_model_does(sparsity: float) -> None:
    """Regression: eval-mode gates were each gate's median, open for gates pruning then
    removed, so the gated loss (3.22) said nothing of the pruned model's (4.14)."""
    model = _model()
    gates = add_gates(model, PruneConfig(sparsity))
    with torch.no_grad():  # gates half-way through training: none saturated
        gates.heads.log_alpha.uniform_(-1.0, 1.0)
        gates.channels.log_alpha.uniform_(-1.0, 1.0)
    gates.eval()
    with torch.no_grad():
        gated = model(IDS).logits
        pruned = prune(model, gates).eval()
        torch.testing.assert_close(pruned(IDS).logits, gated, rtol=1e-4, atol=1e-4)


def test_fixed_gates_stop_learning_and_keep_what_pruning_keeps() -> None:
    model = _model().train()
    gates = add_gates(model, PruneConfig(0.5))
    with torch.no_grad():
        gates.channels.log_alpha.uniform_(-1.0, 1.0)
    gates.train()
    gates.fix_()
    log_alpha = gates.channels.log_alpha.detach().clone()
    channels = gates.values()[1]
    kept = gates.kept()[1]
    assert bool((channels.gather(1, kept) > 0).all())
    assert int((channels > 0).sum()) == kept.numel()
    optimizer = torch.optim.AdamW([*model.parameters(), *gates.parameters()], lr=0.1)
    for _ in range(3):
        loss = model(IDS, labels=IDS).loss + gates.penalty()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert float(gates.penalty()) == 0.0
    torch.testing.assert_close(gates.channels.log_alpha, log_alpha, rtol=0, atol=0)
    torch.testing.assert_close(gates.values()[1], channels, rtol=0, atol=0)


@pytest.mark.parametrize("share", [-0.1, 1.0])
def test_recovery_share_outside_0_1_is_refused(share: float) -> None:
    with pytest.raises(UsageError, match=r"\[0, 1\)"):
        PruneConfig(0.3, recover_fraction=share)


@pytest.mark.parametrize("sparsity", [0.0, 1.0, -0.1, 1.5])
def test_sparsity_outside_0_1_is_refused(sparsity: float) -> None:
    with pytest.raises(UsageError, match=r"\(0, 1\)"):
        PruneConfig(sparsity)


def test_non_llama_models_are_refused() -> None:
    gpt2 = build_model(
        {"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 256}
    )
    with pytest.raises(UnsupportedArchitectureError, match="Llama-style"):
        add_gates(gpt2, PruneConfig(0.3))
