"""The memory view's payload (memlens/lsp_server/memory_view/) from real worker results:
the webview fixtures in vscode-extension/test/fixtures, which generate.py wrote from the
worker; their committed ``view`` must be what ``build_memory_view`` builds today."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from memlens.errors import MalformedReportError
from memlens.lsp_server.memory_view import VERSION, build_memory_view

FIXTURES = Path(__file__).parents[2] / "vscode-extension" / "test" / "fixtures"
GIB = 2**30


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("report-*.json")), ids=lambda p: p.stem)
def test_the_committed_fixtures_hold_what_memory_view_builds(path: Path) -> None:
    data = fixture(path.stem)
    view = build_memory_view(data["report"], data["budget_bytes"]).to_json()
    assert view == data["view"], f"regenerate with {FIXTURES / 'generate.py'}"
    assert json.loads(json.dumps(view)) == view  # plain JSON, as the notification sends it
    assert view["version"] == VERSION


def test_a_meta_skeleton_profile_draws_the_estimate_per_layer_nothing_measured() -> None:
    report = fixture("report-profile")["report"]
    estimate = report["estimate"]
    view = build_memory_view(report, 24 * GIB)
    assert view.title == "Profile · Qwen/Qwen2.5-0.5B"
    assert "nothing measured" in view.subtitle
    assert len(view.layers) == len(estimate["layers"])
    assert len(view.totals) == 1
    [total] = view.totals
    assert [s.kind for s in total.segments] == ["weights", "kv", "activations"]
    assert total.segments[0].bytes == estimate["weight_bytes"]
    assert view.budget is not None
    assert view.budget.bytes == 24 * GIB
    first = view.layers[1].bars[0].segments
    assert first[0].bytes == estimate["layers"][1]["bytes_by_dtype"]["bf16"]
    assert first[1].bytes == estimate["layers"][1]["kv_cache_bytes"]
    assert not any(c.key == "measured" for c in view.columns)
    assert any("meta-device skeleton" in n for n in view.notes)
    assert any("tied to model.embed_tokens" in str(r["name"].value) for r in view.rows)


def test_a_measured_profile_puts_the_measured_bytes_beside_each_layers_estimate() -> None:
    report = fixture("report-profile-measured")["report"]
    view = build_memory_view(report, None)
    assert "measured next to the static estimate" in view.subtitle
    assert [t.label for t in view.totals][1:] == ["Measured weights", "Measured peak"]
    assert view.totals[2].segments[0].bytes == report["measured"]["peak_bytes"]
    layer = next(g for g in view.layers if g.name == "model.layers.0")
    assert [b.label for b in layer.bars] == ["estimate", "measured"]
    measured = next(m for m in report["measured"]["layers"] if m["name"] == "model.layers.0")
    assert [(s.kind, s.bytes) for s in layer.bars[1].segments] == [
        ("measured", measured["bytes"]),
        ("kv", measured["kv_cache_bytes"]),
        ("output", measured["activation_bytes"]),
    ]
    assert [c.title for c in view.columns[-3:]] == [
        "Measured weights",
        "Measured KV",
        "Largest output",
    ]
    assert any(f.label == "Device" and f.text == "cpu" for f in view.figures)
    assert any(
        f.label == "Decode speed" and f.text.endswith(" tokens/s (without profiler hooks)")
        for f in view.figures
    )


def test_measured_reports_without_per_block_kv_and_activations_still_draw() -> None:
    """Older workers measured only each block's weights."""
    report = copy.deepcopy(fixture("report-profile-measured")["report"])
    for layer in report["measured"]["layers"]:
        del layer["kv_cache_bytes"]
        del layer["activation_bytes"]
    del report["measured"]["decode_tokens_per_s"]
    view = build_memory_view(report, None)
    layer = next(g for g in view.layers if g.name == "model.layers.0")
    assert [s.bytes for s in layer.bars[1].segments] == [147968, 0, 0]
    row = next(r for r in view.rows if r["name"].value == "model.layers.0")
    assert row["measuredKv"].value is None


def test_an_estimate_report_draws_the_first_dtype_per_layer_and_every_dtypes_total() -> None:
    view = build_memory_view(fixture("report-estimate")["report"], None)
    assert view.title == "Estimate · Qwen/Qwen2.5-0.5B"
    assert len(view.layers) > 20
    assert [f.label for f in view.figures] == ["Total bf16"]


def test_a_compress_report_draws_before_beside_after_and_tolerates_unmeasured_quality() -> None:
    report = fixture("report-compress")["report"]
    view = build_memory_view(report, None)
    before = sum(layer["bytes_before"] for layer in report["layers"])
    after = sum(layer["bytes_after"] for layer in report["layers"])
    assert [t.segments[0].bytes for t in view.totals] == [before, after]
    assert after < before
    assert [b.label for b in view.layers[1].bars] == ["before", "after"]
    assert any(f.label == "Perplexity" and f.text == "not measured" for f in view.figures)
    assert "int4, group 128, from bf16" in view.subtitle
    assert view.rows[1]["relError"].value is None
    assert view.rows[1]["relError"].text == "—"


def test_a_measured_compress_report_shows_perplexity_and_speed() -> None:
    report = {
        **fixture("report-compress")["report"],
        "ppl_before": 12.1,
        "ppl_after": 12.43,
        "tokens_per_s_before": 20,
        "tokens_per_s_after": 31.5,
        "measured": True,
    }
    report["layers"] = [{**layer, "rel_error": 0.012} for layer in report["layers"]]
    view = build_memory_view(report, None)
    assert any(f.label == "Perplexity" and f.text == "12.10 → 12.43" for f in view.figures)
    assert any(f.label == "Tokens/s" and f.text == "20.00 → 31.50" for f in view.figures)
    assert view.rows[0]["relError"].text == "1.20%"


def test_malformed_reports_raise_an_error_that_names_the_field() -> None:
    good = fixture("report-profile")["report"]
    with pytest.raises(MalformedReportError):
        build_memory_view(None, None)
    with pytest.raises(
        MalformedReportError,
        match=r'report\.kind "nope" is not one of profile, estimate, compress',
    ):
        build_memory_view({"kind": "nope"}, None)
    broken = copy.deepcopy(good)
    broken["estimate"]["layers"][2]["bytes_by_dtype"]["bf16"] = "lots"
    with pytest.raises(
        MalformedReportError,
        match=r"report\.estimate\.layers\[2\]\.bytes_by_dtype\.bf16 is not a byte count",
    ):
        build_memory_view(broken, None)
    no_layers = copy.deepcopy(good)
    del no_layers["estimate"]["layers"]
    with pytest.raises(MalformedReportError, match=r"report\.estimate\.layers is missing"):
        build_memory_view(no_layers, None)
    bad_size = {
        "kind": "compress",
        "model": "m",
        "layers": [{"name": "x", "bytes_before": -1, "bytes_after": 0}],
    }
    with pytest.raises(MalformedReportError, match=r"layers\[0\]\.bytes_before"):
        build_memory_view(bad_size, None)


def test_cells_carry_the_raw_value_and_the_text_and_the_budget_says_when_it_is_exceeded() -> None:
    report = fixture("report-profile")["report"]
    view = build_memory_view(report, 2**20)
    embed = view.rows[0]
    assert (embed["params"].value, embed["params"].text) == (136_134_656, "136.1M")
    assert (embed["weights"].value, embed["weights"].text) == (272_269_312, "259.7 MiB")
    assert view.budget is not None
    assert (view.budget.text, view.budget.exceeded) == ("1.0 MiB", True)
    assert [item.label for item in view.legend] == [
        "Weights",
        "KV cache",
        "Prefill activations (estimate)",
    ]
    assert view.totals[0].total_bytes == sum(s.bytes for s in view.totals[0].segments)
    assert build_memory_view(report, None).budget is None


def _compress_report(**extra: Any) -> dict[str, Any]:
    layers = [
        {
            "name": f"model.layers.{i}.{proj}",
            "scheme": scheme,
            "bytes_before": 1000,
            "bytes_after": after,
            "rel_error": error,
        }
        for i in range(3)
        for proj, scheme, after, error in (
            ("self_attn.q_proj", "int8", 500, 0.01 * (i + 1)),
            ("mlp.down_proj", "int4", 300, 0.02),
        )
    ]
    return {
        "kind": "compress",
        "model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "config": {"scheme": "int4", "group_size": 128},
        "layers": layers,
        "measured": True,
        **extra,
    }


def test_a_compress_view_says_which_layers_fell_back_and_why() -> None:
    """Issue 17: the header said "int4, group 128" while most matrices were INT8."""
    view = build_memory_view(_compress_report(), None)
    assert view.subtitle == "int4, group 128 (3 of 6 layers fell back) · measured"
    assert view.notes[0].startswith("3 of 6 layers fell back to int8: INT4 with group 128")
    assert [f.label for f in view.figures[:2]] == [
        "Before (6 compressed layers)",
        "After (6 compressed layers)",
    ]
    assert view.checkpoint is None


def test_the_whole_models_weights_and_the_checkpoint_are_shown() -> None:
    report = _compress_report(
        weight_bytes_before=269_060_000, weight_bytes_after=150_000_000, out="/c/smol-int4"
    )
    view = build_memory_view(report, None)
    figures = {f.label: f.text for f in view.figures}
    assert figures["Model weights before"] == "256.6 MiB"
    assert figures["The 6 compressed layers"] == "5.9 KiB → 2.3 KiB"
    assert view.checkpoint == "/c/smol-int4"


def test_rows_are_grouped_by_layer_kind_with_every_row_kept() -> None:
    view = build_memory_view(_compress_report(), None)
    assert len(view.rows) == 6
    by_name = {str(row["name"].value): row for row in view.summary_rows}
    assert list(by_name) == [
        "model.layers.*.self_attn.q_proj ×3",
        "model.layers.*.mlp.down_proj ×3",
    ]
    q = by_name["model.layers.*.self_attn.q_proj ×3"]
    assert (q["before"].value, q["after"].value, q["saved"].value) == (3000, 1500, 1500)
    assert q["relError"].value == pytest.approx(0.03)  # the group's largest error
    assert q["scheme"].text == "int8"
    mixed = build_memory_view(
        {
            **_compress_report(),
            "layers": [
                {**layer, "name": f"model.layers.{i}.mlp", "scheme": "int4" if i else "int8"}
                for i, layer in enumerate(_compress_report()["layers"][:3])
            ],
        },
        None,
    )
    assert mixed.summary_rows[0]["scheme"].text == "int8 ×1, int4 ×2"
    # nothing to merge: no summary
    single = {**_compress_report(), "layers": _compress_report()["layers"][:1]}
    assert build_memory_view(single, None).summary_rows == ()
