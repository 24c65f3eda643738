"""``compress_`` (memlens/engine/weights/quantize.py): the bytes held equal what the
estimator predicts, and the compressed model still computes (nearly) the same thing."""

from __future__ import annotations

import pytest
import torch

from memlens.engine import Int4WeightConfig, Int8WeightConfig, compress_
from memlens.engine.weights.config import LowRankWeightConfig, MixedWeightConfig
from memlens.engine.weights.layers import Int4Linear, Int8Linear, LowRankLinear
from memlens.engine.weights.schemes import scheme_of
from memlens.errors import UsageError
from memlens.profiler.architectures import describe
from memlens.profiler.estimate import weight_bytes
from memlens.profiler.measure import module_bytes
from memlens.profiler.tensors import StorageDtype
from tests.support.small_llama import SMALL_LLAMA_CONFIG, small_llama


def _predicted_bytes(dtype: StorageDtype, group: int) -> int:
    """What ``memlens estimate`` says the weights take at ``dtype``."""
    return weight_bytes(describe(SMALL_LLAMA_CONFIG), dtype, group)


@pytest.mark.parametrize(
    ("config", "dtype", "layer"),
    [
        (Int8WeightConfig(), StorageDtype.INT8, Int8Linear),
        (Int4WeightConfig(group_size=32), StorageDtype.INT4, Int4Linear),
        (Int4WeightConfig(group_size=64), StorageDtype.INT4, Int4Linear),
    ],
)
def test_bytes_held_equal_the_estimate_and_outputs_stay_close(
    config: Int8WeightConfig, dtype: StorageDtype, layer: type[torch.nn.Module]
) -> None:
    model = small_llama()
    ids = torch.randint(3, 512, (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model(ids).logits.float()
    compress_(model, config)
    group = getattr(config, "group_size", 128)
    buffers = sum(
        b.numel() * b.element_size() for name, b in model.named_buffers() if "rotary" not in name
    )
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    assert buffers + params == _predicted_bytes(dtype, group)
    assert isinstance(model.model.layers[0].mlp.down_proj, layer)
    assert isinstance(model.lm_head, layer)
    with torch.no_grad():
        after = model(ids).logits.float()
    cosine = torch.nn.functional.cosine_similarity(before.flatten(), after.flatten(), dim=0)
    assert float(cosine) > (0.999 if dtype is StorageDtype.INT8 else 0.98)
    assert module_bytes(model) < buffers + params + 4096  # nothing else left behind


def test_skipped_modules_stay_as_they_are() -> None:
    model = compress_(small_llama(), Int8WeightConfig(skip=("lm_head", "*.mlp.*")))
    assert isinstance(model.lm_head, torch.nn.Linear)
    assert isinstance(model.model.layers[1].mlp.up_proj, torch.nn.Linear)
    assert isinstance(model.model.layers[1].self_attn.q_proj, Int8Linear)


def test_int4_falls_back_to_int8_for_ragged_inputs() -> None:
    linear = torch.nn.Linear(100, 64)
    model = torch.nn.Sequential(linear)
    reference = torch.nn.functional.linear
    x = torch.randn(3, 100)
    compress_(model, Int4WeightConfig(group_size=32, skip=()))
    assert isinstance(model[0], Int8Linear)
    assert scheme_of(model[0]) == "int8"  # reports say what the layer holds
    # regression: aten's int8 kernel crashed or went wrong for K % 8 != 0 and M > 1
    with torch.no_grad():
        expected = reference(x, linear.weight, linear.bias)
        error = (model(x) - expected).norm() / expected.norm()
    assert float(error) < 0.01


def test_int4_takes_the_largest_group_that_divides_the_width_as_the_estimator_does() -> None:
    from memlens.profiler.tensors import matrix

    # regression (issue 14): SmolLM2's width 576 with group 128 fell back to INT8
    model = torch.nn.Sequential(torch.nn.Linear(576, 64, bias=False))
    compress_(model, Int4WeightConfig(group_size=128))
    assert isinstance(model[0], Int4Linear) and model[0].group_size == 64
    assert scheme_of(model[0]) == "int4:g64"
    held = sum(b.numel() * b.element_size() for b in model.buffers())
    assert held == matrix("w", 64, 576).nbytes(StorageDtype.INT4, 128)


def test_int4_needs_outputs_in_multiples_of_16_as_the_estimator_assumes() -> None:
    from memlens.profiler.tensors import matrix

    model = torch.nn.Sequential(torch.nn.Linear(64, 40, bias=False))
    compress_(model, Int4WeightConfig(group_size=32))
    assert isinstance(model[0], Int8Linear)
    held = sum(b.numel() * b.element_size() for b in model.buffers())
    assert held == matrix("w", 40, 64).nbytes(StorageDtype.INT4, 32)


def test_bad_configs() -> None:
    with pytest.raises(UsageError, match="32, 64, 128"):
        Int4WeightConfig(group_size=48)

    class Unknown(Int8WeightConfig):
        pass

    with pytest.raises(UsageError, match="no weight scheme"):
        compress_(torch.nn.Sequential(torch.nn.Linear(4, 4)), Unknown())


def test_mixed_config_picks_per_name_first_match_wins() -> None:
    config = MixedWeightConfig(
        default=Int4WeightConfig(group_size=32),
        overrides=(
            ("lm_head", None),
            ("*.mlp.down_proj", Int8WeightConfig()),
            ("*.mlp.*", LowRankWeightConfig(energy=0.5)),
        ),
    )
    model = compress_(small_llama(), config)
    layer = model.model.layers[0]
    assert isinstance(model.lm_head, torch.nn.Linear)
    assert isinstance(layer.mlp.down_proj, Int8Linear)
    assert isinstance(layer.mlp.up_proj, LowRankLinear)
    assert isinstance(layer.self_attn.q_proj, Int4Linear)


def test_bert_encoder_compresses_and_still_embeds_alike() -> None:
    import transformers

    config = transformers.BertConfig(
        vocab_size=300,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
    )
    torch.manual_seed(0)
    model = transformers.BertModel(config).eval()
    ids = torch.randint(0, 300, (2, 10), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model(input_ids=ids).last_hidden_state
    compress_(model, Int8WeightConfig())
    assert isinstance(model.encoder.layer[0].attention.self.query, Int8Linear)
    with torch.no_grad():
        after = model(input_ids=ids).last_hidden_state
    cosine = torch.nn.functional.cosine_similarity(before, after, dim=-1)
    assert float(cosine.min()) > 0.999
