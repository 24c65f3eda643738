import assert from "node:assert/strict";
import { test } from "node:test";
import { ReportError, formatBytes } from "../../src/webviews/model/format";
import { formatCell, formatCount, memoryView, sortRows } from "../../src/webviews/model/memory";
import { fixture } from "../fixtures";

const GIB = 2 ** 30;

test("formatBytes matches memlens.units.format_bytes", () => {
  assert.equal(formatBytes(0), "0 B");
  assert.equal(formatBytes(1023), "1023 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(24 * GIB), "24.0 GiB");
  assert.equal(formatBytes(-2048), "-2.0 KiB");
  assert.equal(formatCount(43_100_000), "43.1M");
  assert.equal(formatCount(999), "999");
});

test("a meta-skeleton profile draws the estimate per layer, nothing measured", () => {
  const message = fixture("report-profile");
  const estimate = message.report.estimate;
  const view = memoryView(message, 24 * GIB);
  assert.equal(view.title, "Profile · Qwen/Qwen2.5-0.5B");
  assert.match(view.subtitle, /nothing measured/);
  assert.equal(view.layers.length, estimate.layers.length);
  assert.equal(view.totals.length, 1);
  const [total] = view.totals;
  assert.deepEqual(total.segments.map((s) => s.kind), ["weights", "kv", "activations"]);
  assert.equal(total.segments[0].bytes, estimate.weight_bytes);
  assert.equal(view.budget, 24 * GIB);
  const first = view.layers[1].bars[0].segments;
  assert.equal(first[0].bytes, estimate.layers[1].bytes_by_dtype.bf16);
  assert.equal(first[1].bytes, estimate.layers[1].kv_cache_bytes);
  assert.ok(!view.columns.some((c) => c.key === "measured"));
  assert.ok(view.notes.some((n) => n.includes("meta-device skeleton")));
  assert.ok(view.rows.some((r) => String(r.name).includes("tied to model.embed_tokens")));
});

test("a measured profile puts the measured bytes beside each layer's estimate", () => {
  const message = fixture("report-profile-measured");
  const view = memoryView(message, null);
  assert.match(view.subtitle, /measured next to the static estimate/);
  assert.deepEqual(view.totals.map((t) => t.label).slice(1), ["Measured weights", "Measured peak"]);
  assert.equal(view.totals[2].segments[0].bytes, message.report.measured.peak_bytes);
  const layer = view.layers.find((g) => g.name === "model.layers.0")!;
  assert.deepEqual(layer.bars.map((b) => b.label), ["estimate", "measured"]);
  const measured = message.report.measured.layers.find((l: any) => l.name === "model.layers.0");
  assert.deepEqual(layer.bars[1].segments, [
    { kind: "measured", bytes: measured.bytes },
    { kind: "kv", bytes: measured.kv_cache_bytes },
    { kind: "activations", bytes: measured.activation_bytes },
  ]);
  assert.deepEqual(view.columns.slice(-3).map((c) => c.title), ["Measured weights", "Measured KV", "Measured activations"]);
  assert.ok(view.figures.some(([k, v]) => k === "Device" && v === "cpu"));
  assert.ok(view.figures.some(([k, v]) => k === "Decode speed" && / tokens\/s$/.test(v)));
});

test("measured reports without per-block KV and activations (older workers) still draw", () => {
  const message = structuredClone(fixture("report-profile-measured"));
  for (const layer of message.report.measured.layers) {
    delete layer.kv_cache_bytes;
    delete layer.activation_bytes;
  }
  delete message.report.measured.decode_tokens_per_s;
  const view = memoryView(message, null);
  const layer = view.layers.find((g) => g.name === "model.layers.0")!;
  assert.deepEqual(layer.bars[1].segments.map((s) => s.bytes), [147968, 0, 0]);
  assert.equal(view.rows.find((r) => r.name === "model.layers.0")!.measuredKv, null);
});

test("an estimate report draws the first dtype per layer and every dtype's total", () => {
  const view = memoryView(fixture("report-estimate"), null);
  assert.equal(view.title, "Estimate · Qwen/Qwen2.5-0.5B");
  assert.ok(view.layers.length > 20);
  assert.deepEqual(view.figures.map(([k]) => k), ["Total bf16"]);
});

test("a compress report draws before beside after and tolerates unmeasured quality", () => {
  const message = fixture("report-compress");
  const view = memoryView(message, null);
  const before = message.report.layers.reduce((s: number, l: any) => s + l.bytes_before, 0);
  const after = message.report.layers.reduce((s: number, l: any) => s + l.bytes_after, 0);
  assert.deepEqual(view.totals.map((t) => t.segments[0].bytes), [before, after]);
  assert.ok(after < before);
  assert.deepEqual(view.layers[1].bars.map((b) => b.label), ["before", "after"]);
  assert.ok(view.figures.some(([k, v]) => k === "Perplexity" && v === "not measured"));
  assert.match(view.subtitle, /int4, group 128, from bf16/);
  assert.equal(view.rows[1].relError, null);
  assert.equal(formatCell(view.rows[1].relError, "percent"), "—");
});

test("a measured compress report shows perplexity and speed", () => {
  const message = fixture("report-compress");
  const report = { ...message.report, ppl_before: 12.1, ppl_after: 12.43, tokens_per_s_before: 20, tokens_per_s_after: 31.5, measured: true };
  report.layers = report.layers.map((l: any) => ({ ...l, rel_error: 0.012 }));
  const view = memoryView({ ...message, report }, null);
  assert.ok(view.figures.some(([k, v]) => k === "Perplexity" && v === "12.10 → 12.43"));
  assert.ok(view.figures.some(([k, v]) => k === "Tokens/s" && v === "20.00 → 31.50"));
  assert.equal(formatCell(view.rows[0].relError, "percent"), "1.20%");
});

test("malformed reports raise an error that names the field", () => {
  const good = fixture("report-profile");
  assert.throws(() => memoryView(null, null), ReportError);
  assert.throws(() => memoryView({ report: { kind: "nope" } }, null), /report.kind "nope" is not one of profile, estimate, compress/);
  const broken = structuredClone(good);
  broken.report.estimate.layers[2].bytes_by_dtype.bf16 = "lots";
  assert.throws(() => memoryView(broken, null), /report\.estimate\.layers\[2\]\.bytes_by_dtype\.bf16 is not a byte count/);
  const noLayers = structuredClone(good);
  delete noLayers.report.estimate.layers;
  assert.throws(() => memoryView(noLayers, null), /report\.estimate\.layers is missing/);
  assert.throws(() => memoryView({ report: { kind: "compress", model: "m", layers: [{ name: "x", bytes_before: -1, bytes_after: 0 }] } }, null), /layers\[0\]\.bytes_before/);
});

test("sorting: numbers and text, nulls last, stable", () => {
  const rows = [
    { name: "layers.10", bytes: 5 },
    { name: "layers.2", bytes: null },
    { name: "layers.1", bytes: 5 },
    { name: "embed", bytes: 9 },
  ];
  assert.deepEqual(sortRows(rows, "bytes", true).map((r) => r.name), ["embed", "layers.10", "layers.1", "layers.2"]);
  assert.deepEqual(sortRows(rows, "bytes", false).map((r) => r.name), ["layers.10", "layers.1", "embed", "layers.2"]);
  assert.deepEqual(sortRows(rows, "name", false).map((r) => r.name), ["embed", "layers.1", "layers.2", "layers.10"]);
});
