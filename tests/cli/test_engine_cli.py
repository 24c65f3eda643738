"""``memlens compress``, ``generate``, ``profile`` and ``bench`` on a small local model
folder (random weights, byte-level tokens), through the CLI's ``main``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from memlens.cli.main import main
from memlens.engine.tokens import BYTE_TOKENIZER
from tests.support.byte_model import BYTE_MODEL_CONFIG
from tests.support.tiny_configs import build_model


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert main([*argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_compress_reports_and_writes_a_checkpoint_that_generates(
    byte_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "int8"
    report = run_json(
        capsys, "compress", str(byte_model_dir), "--weights", "int8", "--out", str(out)
    )
    assert report["kind"] == "compress" and report["measured"] is True
    assert report["config"]["scheme"] == "int8"
    assert report["weight_bytes_after"] < 0.6 * report["weight_bytes_before"]
    assert all(0 < layer["rel_error"] < 0.02 for layer in report["layers"])
    assert report["ppl_before"] > 1 and abs(report["ppl_delta"]) < 0.05
    assert report["tokens_per_s_after"] > 0
    assert (out / "memlens.json").is_file() and (out / BYTE_TOKENIZER).is_file()

    generated = run_json(capsys, "generate", str(out), "--prompt", "def f", "--max-new-tokens", "6")
    assert generated["new_tokens"] == 6 and generated["text"]
    profiled = run_json(capsys, "profile", str(out), "--prompt-tokens", "16", "--new-tokens", "4")
    layers = {layer["name"]: layer for layer in profiled["layers"]}
    # K and V · 2 KV heads · 19 positions (16 prompt + 3 fed back) · head dim 16 · bf16
    assert layers["model.layers.0"]["kv_cache_bytes"] == 2 * 2 * 19 * 16 * 2
    assert profiled["peak_bytes"] > profiled["weights_bytes"]


def test_generate_streams_text_to_stdout(
    byte_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "generate",
        str(byte_model_dir),
        "--prompt",
        "x = ",
        "--max-new-tokens",
        "4",
        "--seed",
        "3",
    ]
    assert main(args) == 0
    streamed = capsys.readouterr()
    assert streamed.out.startswith("x = ") and "4 tokens" in streamed.err


def test_kv_option_profiles_and_generates_with_the_compressed_cache(
    byte_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(byte_model_dir)
    argv = ["--prompt-tokens", "80", "--new-tokens", "4", "--kv", "int8:g16:r8"]
    profiled = run_json(capsys, "profile", model, *argv)
    assert profiled["kv_cache"] == "int8:g16:r8"
    layers = {layer["name"]: layer for layer in profiled["layers"]}
    # 83 tokens seen: 64 in INT8 blocks of 16, 19 in the bf16 residual; 2 KV heads of 16
    quantized = 2 * 2 * 64 * 16  # K and V, one byte each
    scales = (
        2 * 2 * 4 * 16 * 2 + 2 * 2 * 64 * 1 * 2
    )  # fp16 scale+min: keys per block, values per token
    residual = 2 * 2 * 19 * 16 * 2
    assert layers["model.layers.0"]["kv_cache_bytes"] == quantized + scales + residual
    generated = run_json(capsys, "generate", model, "--prompt", "def f", "--kv", "int4,h2o:0.5")
    assert generated["new_tokens"] == 64 and generated["text"]


def test_kv_option_profiles_with_h2o_eviction(
    byte_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--prompt-tokens", "80", "--new-tokens", "4", "--kv", "h2o:16"]
    profiled = run_json(capsys, "profile", str(byte_model_dir), *argv)
    layers = {layer["name"]: layer for layer in profiled["layers"]}
    # full precision, no slack: 16 kept + the last token; K and V in bf16, plus the
    # float32 attention each of the 2 KV heads gave those 17 tokens
    assert layers["model.layers.0"]["kv_cache_bytes"] == 2 * 2 * 17 * 16 * 2 + 2 * 17 * 4


def test_auto_with_a_budget_fits_it(
    byte_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run_json(
        capsys,
        "compress",
        str(byte_model_dir),
        "--weights",
        "auto",
        "--budget",
        "150KiB",
        "--no-speed",
    )
    assert report["weight_bytes_before"] > 150 * 1024 >= report["weight_bytes_after"]
    assert any(layer["scheme"] != "keep" for layer in report["layers"])
    assert report["notes"] and report["notes"][0].startswith("auto plan:")


def test_bench_measures_each_scheme(
    byte_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_json(
        capsys,
        "bench",
        str(byte_model_dir),
        "--weights",
        "bf16,int8",
        "--prompt-tokens",
        "8",
        "--new-tokens",
        "3",
    )
    bf16, int8 = result["results"]
    assert (bf16["label"], int8["label"]) == ("bf16", "int8")
    assert int8["weight_bytes"] < bf16["weight_bytes"]
    assert int8["decode_tokens_per_s"] > 0 and int8["floor_tokens_per_s"] > 0


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["compress", "{model}", "--weights", "int3"], 2, "--weights"),
        (["compress", "{model}", "--weights", "int8", "--max-error", "0.1"], 2, "auto"),
        (["compress", "{model}", "--weights", "auto", "--budget", "lots"], 2, "not a size"),
        (["compress", "{model}", "--weights", "auto", "--budget", "1KiB"], 2, "smallest plan"),
        (["compress", "{model}", "--out", "{model}"], 2, "not an empty folder"),
        (["compress", "{model}", "--out", "{model}/config.json"], 2, "not an empty folder"),
        (["compress", "{empty}"], 3, "config.json"),
        (["compress", "{weightless}"], 3, "safetensors"),
        (["compress", "{missing}"], 3, "not a folder"),
        (["compress", "{model}", "--calibration", "{missing}"], 2, "cannot read"),
        (["generate", "{model}", "--prompt", ""], 2, "empty"),
        (["generate", "{model}", "--prompt", "a", "--temperature", "0"], 2, "temperature"),
        (["generate", "{weightless_tokenless}", "--prompt", "a"], 3, "safetensors"),
        (["generate", "{corrupt}", "--prompt", "a"], 4, "truncated or corrupt"),
        (["compress", "{bad_config}"], 4, "not a config"),
        (["compress", "{truncated}"], 4, "do not load"),
        (["profile", "{model}", "--new-tokens", "0"], 2, "--new-tokens"),
        (["profile", "{model}", "--kv", "int3"], 2, "--kv 'int3'"),
        (["generate", "{model}", "--prompt", "a", "--kv", "h2o:2.0"], 2, "fraction must be"),
        (["bench", "{model}", "--weights", "auto"], 2, "fixed schemes"),
    ],
)
def test_bad_input_is_one_clear_line_and_an_exit_code(
    argv: list[str],
    code: int,
    message: str,
    byte_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "empty").mkdir()
    weightless = tmp_path / "weightless"
    weightless.mkdir()
    (weightless / "config.json").write_text(json.dumps(BYTE_MODEL_CONFIG))
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "memlens.json").write_text((_checkpoint(tmp_path) / "memlens.json").read_text())
    (corrupt / "model.safetensors").write_bytes(b"\x08\x00\x00")
    bad_config = tmp_path / "bad-config"
    bad_config.mkdir()
    (bad_config / "config.json").write_text('{"model_type": "no-such-model"}')
    (bad_config / "model.safetensors").write_bytes(b"")
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    for name in ("config.json", "byte_tokenizer.json"):
        (truncated / name).write_bytes((byte_model_dir / name).read_bytes())
    (truncated / "model.safetensors").write_bytes(
        (byte_model_dir / "model.safetensors").read_bytes()[:100]
    )
    paths = {
        "bad_config": bad_config,
        "truncated": truncated,
        "model": byte_model_dir,
        "empty": tmp_path / "empty",
        "weightless": weightless,
        "weightless_tokenless": weightless,
        "missing": tmp_path / "missing",
        "corrupt": corrupt,
    }
    before = sorted(p.name for p in byte_model_dir.iterdir())
    assert main([a.format(**paths) for a in argv]) == code
    [line] = [text for text in capsys.readouterr().err.splitlines() if text.strip()]
    assert line.startswith("memlens: error:") and message in line
    assert sorted(p.name for p in byte_model_dir.iterdir()) == before  # nothing lost or added


def _checkpoint(tmp_path: Path) -> Path:
    from memlens.engine import Int8WeightConfig, compress_, save_compressed

    model = build_model(BYTE_MODEL_CONFIG).to(torch.bfloat16)
    return save_compressed(
        compress_(model, Int8WeightConfig()), Int8WeightConfig(), tmp_path / "ck"
    )
