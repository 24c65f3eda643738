import assert from "node:assert/strict";
import { test } from "node:test";
import { ReportError } from "../../src/webviews/model/format";
import { MEMORY_VIEW_VERSION, parseMemoryView } from "../../src/webviews/model/memory";
import { fixture } from "../fixtures";

// The payloads are built by memlens/lsp_server/memory_view/ (tests/lsp_server/test_memory_view.py
// tests what they hold); here: the view accepts them as they are and names a bad field.

test("every payload memory_view built passes validation unchanged", () => {
  for (const name of ["report-profile", "report-profile-measured", "report-estimate", "report-compress", "report-training", "report-training-measured"]) {
    const payload = fixture(name).view;
    assert.deepEqual(parseMemoryView(payload), payload, name);
    assert.equal(payload.version, MEMORY_VIEW_VERSION);
  }
});

test("a version-2 payload (a panel's state from before the training kinds) still passes", () => {
  const old = { ...fixture("report-compress").view, version: 2 };
  assert.deepEqual(parseMemoryView(old), old);
});

test("a malformed payload raises an error that names the field", () => {
  const good = fixture("report-profile").view;
  assert.throws(() => parseMemoryView(null), ReportError);
  assert.throws(() => parseMemoryView({ ...good, version: 4 }), /view\.version 4 is not 2 or 3: update the memlens extension or server/);
  assert.throws(() => parseMemoryView({ ...good, version: 1 }), /view\.version 1 is not 2 or 3/);
  assert.throws(() => parseMemoryView({ ...good, checkpoint: 7 }), /view\.checkpoint is not a string or null/);
  assert.throws(() => parseMemoryView({ ...good, summary_rows: [{}] }), /view\.summary_rows\[0\]\.name is missing/);
  const segment = structuredClone(good);
  segment.layers[2].bars[0].segments[1].bytes = "lots";
  assert.throws(() => parseMemoryView(segment), /view\.layers\[2\]\.bars\[0\]\.segments\[1\]\.bytes is not a byte count/);
  const kind = structuredClone(good);
  kind.totals[0].segments[0].kind = "<img>";
  assert.throws(() => parseMemoryView(kind), /view\.totals\[0\]\.segments\[0\]\.kind "<img>" is not one of/);
  const cell = structuredClone(good);
  delete cell.rows[3].weights;
  assert.throws(() => parseMemoryView(cell), /view\.rows\[3\]\.weights is missing/);
  const value = structuredClone(good);
  value.rows[0].params.value = { n: 1 };
  assert.throws(() => parseMemoryView(value), /view\.rows\[0\]\.params\.value is not a string, number or null/);
  const budget = structuredClone(good);
  budget.budget.exceeded = "no";
  assert.throws(() => parseMemoryView(budget), /view\.budget\.exceeded is not true or false/);
  const noLayers = structuredClone(good);
  delete noLayers.layers;
  assert.throws(() => parseMemoryView(noLayers), /view\.layers is missing/);
});
