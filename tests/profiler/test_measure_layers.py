"""Per-block measured memory (memlens/profiler/measure.py): bytes held and outputs seen."""

from __future__ import annotations

import torch

from memlens.engine import Int4WeightConfig, compress_
from memlens.profiler.measure import block_names, measure_layers, module_bytes
from tests.support.cuda import needs_cuda
from tests.support.tiny_configs import build_model, tiny_config


def test_blocks_cover_every_tensor_once_and_outputs_have_the_run_shape() -> None:
    model = build_model(tiny_config("llama")).to(torch.bfloat16)
    ids = torch.randint(3, 300, (2, 7))
    _, layers = measure_layers(model, lambda: model(input_ids=ids))
    names = [layer.name for layer in layers]
    assert names[:2] == ["model.embed_tokens", "model.layers.0"] and names[-1] == "lm_head"
    assert sum(layer.weight_bytes for layer in layers) == module_bytes(model)
    by_name = {layer.name: layer for layer in layers}
    hidden = 2 * 7 * 64 * 2  # (B, T, hidden) in bf16
    assert by_name["model.layers.1"].activation_bytes == hidden
    assert by_name["lm_head"].activation_bytes == 2 * 7 * 320 * 2


def test_compressed_layers_are_measured_in_their_storage_format() -> None:
    model = build_model(tiny_config("llama")).to(torch.bfloat16)
    dense = {layer.name: layer.weight_bytes for layer in measure_layers(model, lambda: None)[1]}
    compress_(model, Int4WeightConfig(group_size=32))
    packed = {layer.name: layer.weight_bytes for layer in measure_layers(model, lambda: None)[1]}
    assert packed["model.layers.0"] < dense["model.layers.0"] * 0.35
    assert packed["model.embed_tokens"] == dense["model.embed_tokens"]


def test_an_encoder_with_its_own_buffers_is_not_counted_twice() -> None:
    model = build_model(tiny_config("bert-mlm"))
    names = block_names(model)
    assert not any(a != b and b.startswith(a + ".") for a in names for b in names)
    _, layers = measure_layers(model, lambda: None)
    assert sum(layer.weight_bytes for layer in layers) == module_bytes(model)  # tied head once


@needs_cuda
def test_int4_blocks_hold_the_same_bytes_on_cuda_as_the_allocator_sees() -> None:
    """Moving an INT4 model to the GPU re-packs its weights for tinygemm, in as many
    bytes; the per-block figures match the CPU's and the allocator's growth."""
    model = build_model(tiny_config("llama")).to(torch.bfloat16)
    compress_(model, Int4WeightConfig(group_size=32))
    on_cpu = {layer.name: layer.weight_bytes for layer in measure_layers(model, lambda: None)[1]}
    before = torch.cuda.memory_allocated()
    model.cuda()
    grown = torch.cuda.memory_allocated() - before
    on_gpu = {layer.name: layer.weight_bytes for layer in measure_layers(model, lambda: None)[1]}
    assert on_gpu == on_cpu
    assert sum(on_gpu.values()) <= grown < sum(on_gpu.values()) + (1 << 20)  # + allocator rounding
