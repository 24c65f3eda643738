"""The worker's ``memlens.profile`` with a training configuration
(memlens/worker/tasks/profile.py): the analytic training estimate, and one measured step
when the weights are on disk."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.fixtures.byte_llama_model import fixture_dir
from memlens.errors import UsageError
from memlens.worker.methods import RequestContext
from memlens.worker.tasks.profile import profile


def _context(sent: list[dict[str, Any]]) -> RequestContext:
    return RequestContext(request_id=1, write=sent.append)


def test_training_profile_measures_a_step_of_weights_on_disk() -> None:
    pytest.importorskip("peft")
    sent: list[dict[str, Any]] = []
    train = {"method": "lora", "lora_rank": 4, "batch": 1, "seq": 32, "version": 1}
    report = profile({"model": str(fixture_dir()), "train": train}, _context(sent))
    assert report["kind"] == "training-profile"
    estimate, measured = report["estimate"], report["measured"]
    assert estimate["kind"] == "training" and estimate["config"]["lora_rank"] == 4
    assert measured["trainable_params"] == estimate["trainable_params"]
    assert measured["optimizer_bytes"] == estimate["optimizer_bytes"]
    assert measured["peak_bytes"] == pytest.approx(estimate["peak_bytes"], rel=0.15)
    assert any("Measured step" in m["progress"]["message"] for m in sent)


def test_training_profile_without_weights_is_the_estimate() -> None:
    train = {"method": "full", "optimizer": "sgd", "batch": 2, "seq": 128}
    report = profile({"model": "meta-llama/Llama-2-7b-hf", "train": train}, _context([]))
    assert report["measured"] is None and "not on disk" in report["notes"][0]
    assert report["estimate"]["optimizer_bytes"] == 0
    ram = next(fit for fit in report["estimate"]["fits"] if fit["device"] == "cpu")
    assert ram["fits"] == (report["estimate"]["peak_bytes"] <= ram["capacity_bytes"])


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ({"method": "lora", "lora_rank": 0}, "LoRA rank"),
        ({"optimizer": "lion"}, "unknown optimizer"),
        ({"batch": 0}, "--batch"),
        ({"method": "lora", "lora_targets": ["qkv"]}, "matches no linear module"),
        ("lora", "must be an object"),
    ],
)
def test_bad_training_configs_are_usage_errors(train: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        profile({"model": "meta-llama/Llama-2-7b-hf", "train": train}, _context([]))
