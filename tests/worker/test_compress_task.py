"""The worker's ``memlens.compress`` (memlens/worker/tasks/compress.py): measured when the
weights and a tokenizer are on disk, a plan of exact sizes otherwise."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from memlens.errors import UsageError
from memlens.worker.methods import RequestContext
from memlens.worker.tasks.compress import compress
from tests.support.byte_model import BYTE_MODEL_CONFIG
from tests.support.tiny_configs import build_model


def _context(sent: list[dict[str, Any]]) -> RequestContext:
    return RequestContext(request_id=1, write=sent.append)


def test_weights_and_tokenizer_on_disk_give_a_measured_report(
    byte_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MEMLENS_CACHE_DIR", str(tmp_path))
    sent: list[dict[str, Any]] = []
    report = compress({"model": str(byte_model_dir), "weights": "int4:g32"}, _context(sent))
    assert report["measured"] is True and report["config"]["group_size"] == 32
    for figure in ("ppl_before", "ppl_after", "tokens_per_s_after"):
        value = report[figure]  # NaN is truthy: check finite and positive
        assert isinstance(value, float) and math.isfinite(value) and value > 0, (figure, value)
    assert Path(report["out"], "memlens.json").is_file()
    assert str(tmp_path) in report["out"]
    percentages = [m["progress"].get("percentage", 0) for m in sent]
    assert percentages == sorted(percentages) and percentages[-1] == 100


def test_no_tokenizer_gives_the_plan_and_says_why(tmp_path: Path) -> None:
    build_model(BYTE_MODEL_CONFIG).save_pretrained(tmp_path, safe_serialization=True)
    report = compress({"model": str(tmp_path), "scheme": "int8"}, _context([]))
    assert report["measured"] is False and report["layers"]
    assert "no tokenizer" in report["notes"][-1]


def test_auto_needs_the_weights(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(BYTE_MODEL_CONFIG))
    with pytest.raises(UsageError, match="not here"):
        compress({"model": str(tmp_path), "weights": "auto"}, _context([]))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"weights": "int8", "max_error": 0.02}, "auto's error target"),
        ({"weights": "auto", "max_error": "2%"}, "must be a number"),
        ({"weights": "auto", "max_error": True}, "must be a number"),
        ({"weights": "auto", "max_error": 0}, "between 0 and 1"),
        ({"weights": "auto", "max_error": 1.5}, "between 0 and 1"),
    ],
)
def test_a_bad_error_target_is_refused(
    tmp_path: Path, params: dict[str, Any], message: str
) -> None:
    """The Compress… quick pick offers auto with an error target (issue 17)."""
    (tmp_path / "config.json").write_text(json.dumps(BYTE_MODEL_CONFIG))
    with pytest.raises(UsageError, match=message):
        compress({"model": str(tmp_path), **params}, _context([]))
