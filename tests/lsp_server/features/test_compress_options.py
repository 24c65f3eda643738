"""``memlens/compressOptions`` (the Compress… quick pick): the schemes that fit a model,
each with its estimated bytes (issue 17: Compress… started INT4 g128 at once)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from memlens.lsp_server.features.compress_options import compress_options, int4_coverage
from memlens.profiler.architectures import describe
from memlens.profiler.estimate import weight_bytes
from memlens.profiler.tensors import StorageDtype
from tests.support.lsp_client import open_document
from tests.support.tiny_configs import tiny_config

LOAD = """\
import torch
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-2-7b-hf", dtype=torch.float32)
"""


def test_int4_prefers_a_group_size_its_widths_divide() -> None:
    # hidden 64, intermediate 96: down_proj's input width 96 divides by 32, not by 64 or 128
    spec = describe(tiny_config("llama"), source="tiny")
    held, total, widths = int4_coverage(spec, 64)
    assert widths == [96] and held < total
    options = compress_options(spec, StorageDtype.FP32)
    first = options[0]
    assert (first.weights, first.recommended, first.detail) == (
        "int4:g32",
        True,
        f"all {total} matrices INT4",
    )
    assert first.bytes == weight_bytes(spec, StorageDtype.INT4, 32)
    g64 = next(o for o in options if o.weights == "int4:g64")
    assert not g64.recommended
    assert (
        g64.detail
        == f"{total - held} of {total} matrices stay INT8: width 96 is not a multiple of 64"
    )
    int8 = next(o for o in options if o.weights == "int8")
    assert int8.bytes == weight_bytes(spec, StorageDtype.INT8, 128)
    autos = [o for o in options if o.weights == "auto"]
    assert [o.max_error for o in autos] == [0.01, 0.02, 0.05]
    assert autos[1].label == "Auto, error ≤ 2%" and autos[1].bytes is None


async def test_the_request_offers_the_loads_schemes(
    client: LanguageClient, workspace: Path
) -> None:
    uri = open_document(client, workspace / "compress_pick.py", LOAD)
    result = await client.protocol.send_request_async(
        "memlens/compressOptions", {"uri": uri, "line": 2}
    )
    assert result.model == "meta-llama/Llama-2-7b-hf"
    assert result.before_text == "25.1 GiB"  # fp32 weights, what compress starts from
    recommended = [o for o in result.options if o.recommended]
    assert [o.weights for o in recommended] == ["int4:g128"]  # 4096 and 11008 divide by 128
    assert recommended[0].text.endswith("(from 25.1 GiB)")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"uri": "file:///nope.py", "line": 2}, "is not open"),
        ({"uri": 1, "line": 2}, "params must be"),
        ({"line": 2}, "params must be"),
        ("LINE", "line 1"),
    ],
)
async def test_bad_params_are_errors(
    client: LanguageClient, workspace: Path, params: object, message: str
) -> None:
    uri = open_document(client, workspace / "compress_bad.py", LOAD)
    if params == "LINE":
        params = {"uri": uri, "line": 0}  # no load on that line
        message = "no model load with a static id on line 1"
    with pytest.raises(JsonRpcException, match=message):
        await client.protocol.send_request_async("memlens/compressOptions", params)
