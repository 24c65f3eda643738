"""The memory view of a training step (memlens/lsp_server/memory_view/training.py), from
real ``training-profile`` results of the worker's ``memlens.profile``: one measured step of
the byte-level Llama fixture, and estimates of Llama-2-7B (no weights on disk); and the
same view sent by the real server after ``memlens.profile`` with a training configuration."""

from __future__ import annotations

import asyncio
import copy
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any, get_args

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from benchmarks.fixtures.byte_llama_model import fixture_dir
from memlens.errors import MalformedReportError
from memlens.lsp_server.memory_view import MemoryView, SegmentKind, build_memory_view
from memlens.profiler.machine import MemoryPool, fits
from memlens.profiler.training import Phase
from memlens.units import format_bytes
from memlens.worker.methods import RequestContext
from memlens.worker.tasks.profile import profile

GIB = 2**30
LLAMA_7B = "meta-llama/Llama-2-7b-hf"
EXTENSION = Path(__file__).parents[2] / "vscode-extension"


def _training_profile(model: str, **train: Any) -> dict[str, Any]:
    report: dict[str, Any] = profile(
        {"model": model, "train": train}, RequestContext(request_id=1, write=lambda _: None)
    )
    assert report["kind"] == "training-profile"
    return report


@pytest.fixture(scope="module")
def measured_report() -> dict[str, Any]:
    """Full fine-tuning of the byte-level Llama with AdamW: one measured step."""
    report = _training_profile(str(fixture_dir()), method="full", batch=2, seq=64)
    assert report["measured"] is not None
    return report


def _figures(view: MemoryView) -> dict[str, str]:
    return {f.label: f.text for f in view.figures}


def _segments(view: MemoryView, bar: int) -> dict[str, float]:
    return {s.kind: s.bytes for s in view.totals[bar].segments}


def test_the_estimate_and_measured_bars_each_add_up_to_their_step_peak(
    measured_report: dict[str, Any],
) -> None:
    estimate, measured = measured_report["estimate"], measured_report["measured"]
    view = build_memory_view(measured_report, None)
    assert view.title == f"Training step · {fixture_dir()} · full · adamw · fp32 · batch 2 × 64"
    assert view.subtitle == "one measured step next to the estimate"
    phase = estimate["peak_phase"]
    assert [bar.label for bar in view.totals] == [
        f"Estimate · peak at {phase}",
        "Measured · peak on cpu",
    ]
    assert view.totals[0].total_bytes == estimate["peak_bytes"]
    assert view.totals[1].total_bytes == measured["peak_bytes"]
    resident = _segments(view, 0)
    assert resident["weights"] == estimate["weight_bytes"]
    assert resident["optimizer"] == estimate["optimizer_bytes"]
    assert "adapters" not in resident and "master" not in resident  # full, fp32: none
    assert all(s.bytes > 0 for bar in view.totals for s in bar.segments)
    assert _segments(view, 1) == {
        "weights": measured["weight_bytes"],
        "optimizer": measured["optimizer_bytes"],
        "transient": measured["peak_bytes"]
        - measured["weight_bytes"]
        - measured["optimizer_bytes"],
    }


def test_figures_compare_estimate_and_measurement(measured_report: dict[str, Any]) -> None:
    estimate, measured = measured_report["estimate"], measured_report["measured"]
    figures = _figures(build_memory_view(measured_report, None))
    assert (
        figures["Step peak"]
        == f"{format_bytes(estimate['peak_bytes'])} at {estimate['peak_phase']}"
    )
    assert figures["Trainable parameters"].endswith("(100.0%)")
    assert figures["Device"] == "cpu"
    # full fine-tuning's gradients and AdamW's states are exact (test_training_step.py)
    assert (
        figures["Gradients, measured"]
        == f"{format_bytes(measured['gradient_bytes'])} (estimate exact)"
    )
    assert figures["Optimizer states, measured"].endswith("(estimate exact)")
    match = re.fullmatch(r"(.+) \(estimate ([+-])(\d+\.\d+)%\)", figures["Step peak, measured"])
    assert match is not None
    assert match[1] == format_bytes(measured["peak_bytes"])
    error = (estimate["peak_bytes"] - measured["peak_bytes"]) / measured["peak_bytes"]
    assert match[2] == ("+" if error > 0 else "-")
    assert float(match[3]) == pytest.approx(abs(error) * 100, abs=0.01)


def test_the_table_has_each_blocks_training_memory_grouped_by_layer_kind(
    measured_report: dict[str, Any],
) -> None:
    estimate = measured_report["estimate"]
    blocks = estimate["blocks"]
    view = build_memory_view(measured_report, None)
    titles = [c.title for c in view.columns]
    assert titles == [
        "Block",
        "Kind",
        "Params",
        "Trainable",
        "Weights",
        "Grads",
        "Optimizer",
        "Saved act.",
        "Saved with ckpt",
        "At peak",
    ]  # no adapters (full) and no master weights (fp32)
    assert [row["name"].value for row in view.rows] == [b["name"] for b in blocks]
    layers = [b for b in blocks if b["kind"] == "decoder_layer"]
    [grouped] = [
        r for r in view.summary_rows if r["name"].value == f"model.layers.* ×{len(layers)}"
    ]
    assert grouped["gradients"].value == sum(b["gradient_bytes"] for b in layers)
    assert grouped["savedOther"].value == sum(b["activation_bytes_checkpointed"] for b in layers)
    assert grouped["weights"].text == format_bytes(sum(b["weight_bytes"] for b in layers))
    # the blocks' share of the peak and the step's temporaries make up the unsharded peak
    at_peak = sum(float(row["atPeak"].value or 0) for row in view.rows)
    assert at_peak + _segments(view, 0)["temporaries"] == estimate["peak_bytes"]
    # one bar per block: everything it allocates during a step
    first_layer = next(g for g in view.layers if g.name == layers[0]["name"])
    [bar] = first_layer.bars
    assert {s.kind: s.bytes for s in bar.segments} == {
        "weights": layers[0]["weight_bytes"],
        "optimizer": layers[0]["optimizer_bytes"],
        "gradients": layers[0]["gradient_bytes"],
        "saved": layers[0]["activation_bytes"],
    }


def test_a_lora_estimate_without_weights_draws_adapters_and_the_budget_it_exceeds() -> None:
    report = _training_profile(LLAMA_7B, method="lora", precision="bf16-mixed", batch=8)
    estimate = report["estimate"]
    assert estimate["peak_bytes"] > 24 * GIB
    view = build_memory_view(report, 24 * GIB)
    assert view.title == (
        "Training step · meta-llama/Llama-2-7b-hf · lora:r16 · adamw · bf16-mixed · batch 8 × 512"
    )
    assert view.subtitle == "estimate only: nothing measured"
    assert len(view.totals) == 1
    assert _segments(view, 0)["adapters"] == estimate["adapter_bytes"]
    assert view.budget is not None and view.budget.exceeded
    figures = _figures(view)
    assert figures["Trainable parameters"] == "8.4M of 6.7B (0.12%)"
    assert figures["Saved activations"].endswith("with gradient checkpointing)")
    assert any("not on disk" in note for note in view.notes)
    assert [item.label for item in view.legend][:2] == ["Weights", "LoRA adapters"]
    checkpointed = build_memory_view(
        _training_profile(
            LLAMA_7B, method="lora", precision="bf16-mixed", batch=8, gradient_checkpointing=True
        ),
        24 * GIB,
    )
    assert "Saved without ckpt" in [c.title for c in checkpointed.columns]
    assert not checkpointed.budget or not checkpointed.budget.exceeded  # checkpointing fits


def test_under_sharding_the_totals_are_per_device_and_the_blocks_unsharded() -> None:
    report = _training_profile(
        LLAMA_7B, method="full", precision="bf16-mixed", devices=8, sharding="zero3", batch=1
    )
    estimate = report["estimate"]
    view = build_memory_view(report, None)
    assert view.subtitle.endswith("per device of 8 (zero3); blocks unsharded")
    figures = _figures(view)
    assert figures["Model states per device (8 × zero3)"] == format_bytes(
        estimate["model_state_bytes"]
    )
    unsharded = sum(
        b[key]
        for b in estimate["blocks"]
        for key in (
            "weight_bytes",
            "adapter_bytes",
            "optimizer_bytes",
            "master_bytes",
            "gradient_bytes",
        )
    )
    assert figures["Model states on one device, unsharded"] == format_bytes(unsharded)
    assert unsharded > 7 * estimate["model_state_bytes"]
    assert _segments(view, 0)["master"] == estimate["master_bytes"]
    assert view.totals[0].total_bytes == estimate["peak_bytes"]


def test_the_estimate_says_where_the_step_fits(measured_report: dict[str, Any]) -> None:
    peak = measured_report["estimate"]["peak_bytes"]
    pools = [MemoryPool("cpu", "RAM", 4 * peak), MemoryPool("cuda:0", "Small GPU", peak // 2)]
    report = copy.deepcopy(measured_report)
    report["estimate"]["fits"] = [asdict(fit) for fit in fits(peak, pools)]
    figures = _figures(build_memory_view(report, None))
    assert figures[f"RAM ({format_bytes(4 * peak)})"] == "fits"
    assert figures[f"Small GPU ({format_bytes(peak // 2)})"] == "does not fit"


@pytest.mark.parametrize("phase", get_args(Phase))
def test_every_peak_phase_the_estimator_names_draws(
    measured_report: dict[str, Any], phase: str
) -> None:
    report = copy.deepcopy(measured_report)
    report["estimate"]["peak_phase"] = phase
    view = build_memory_view(report, None)
    assert view.totals[0].total_bytes == report["estimate"]["peak_bytes"]
    holds_gradients = phase in ("backward end", "optimizer step")
    assert ("gradients" in _segments(view, 0)) == holds_gradients
    assert ("saved" in _segments(view, 0)) == (not holds_gradients)


def _broken(report: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``report`` with the field at the dotted ``path`` set to ``value`` (None: deleted)."""
    broken = copy.deepcopy(report)
    *parents, last = path.split(".")
    target: Any = broken
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    if value is None:
        del target[last]
    else:
        target[last] = value
    return broken


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "estimate.blocks.1.gradient_bytes",
            None,
            r"report\.estimate\.blocks\[1\]\.gradient_bytes is missing",
        ),
        ("estimate.peak_bytes", "lots", r"report\.estimate\.peak_bytes is not a byte count"),
        ("estimate.peak_bytes", 1, r"report\.estimate\.peak_bytes is less than the resident"),
        ("estimate.peak_phase", "warm-up", r'report\.estimate\.peak_phase "warm-up" is not one of'),
        ("estimate.config", {"optimizer": "lion"}, r"report\.estimate\.config: unknown optimizer"),
        (
            "estimate.fits",
            [{"name": "RAM", "capacity_bytes": 1, "fits": "yes"}],
            r"fits\[0\]\.fits is not true or false",
        ),
        ("measured.device", 0, r"report\.measured\.device is not a string"),
        (
            "measured.peak_bytes",
            1,
            r"report\.measured\.peak_bytes is less than the measured weights",
        ),
        ("measured.gradient_bytes", -4, r"report\.measured\.gradient_bytes is not a byte count"),
    ],
)
def test_a_malformed_training_report_names_the_field(
    measured_report: dict[str, Any], path: str, value: Any, message: str
) -> None:
    with pytest.raises(MalformedReportError, match=message):
        build_memory_view(_broken(measured_report, path, value), None)


def test_every_segment_kind_has_a_legend_name_a_webview_kind_and_a_colour() -> None:
    """The payload's kinds, memory.ts's SEGMENT_KINDS and webview.css's .seg-* rules agree:
    a kind the webview does not know is refused, one without a colour is invisible."""
    kinds = set(get_args(SegmentKind))
    model = (EXTENSION / "src" / "webviews" / "model" / "memory.ts").read_text(encoding="utf-8")
    listed = re.search(r"SEGMENT_KINDS = \[(.*?)\] as const", model, re.S)
    assert listed is not None
    assert set(re.findall(r'"([a-z]+)"', listed[1])) == kinds
    css = (EXTENSION / "media" / "webview.css").read_text(encoding="utf-8")
    assert kinds <= set(re.findall(r"\.seg-([a-z]+) \{ background:", css))


async def test_the_server_sends_the_training_view_after_a_training_profile(
    client: LanguageClient, workspace: Path
) -> None:
    pytest.importorskip("peft")
    notification = asyncio.ensure_future(client.wait_for_notification("memlens/memoryReport"))
    train = {"method": "lora", "lora_rank": 4, "batch": 1, "seq": 32}
    params = {"model": str(workspace / "tiny-llama"), "train": train}
    report = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="memlens.profile", arguments=[params])
    )
    assert isinstance(report, dict) and report["kind"] == "training-profile"
    view = await asyncio.wait_for(notification, 60)  # JSON arrives as an object
    assert (
        view.title == f"Training step · {report['model']} · lora:r4 · adamw · fp32 · batch 1 × 32"
    )
    assert [bar.label for bar in view.totals][1] == "Measured · peak on cpu"
    assert view.totals[1].total_bytes == report["measured"]["peak_bytes"]
    assert view.budget.bytes == 24 * GIB  # the server's memoryBudget setting
    assert {"adapters", "transient"} <= {item.kind for item in view.legend}
