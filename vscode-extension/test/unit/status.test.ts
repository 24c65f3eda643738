import assert from "node:assert/strict";
import { test } from "node:test";
import { loadLineNear } from "../../src/lensTarget";
import { statusView } from "../../src/status";

const summary = { models: 2, estimated: 1, weight_bytes: 26_953_646_080, label: "weights ≈ 25.1 GiB", budget_bytes: 24 * 2 ** 30, budget_label: "24.0 GiB", over_budget: true, over_budget_models: 1 };

test("running with a summary shows the file's total and warns over budget", () => {
  const view = statusView("running", true, summary);
  assert.equal(view.text, "$(pulse) memlens weights ≈ 25.1 GiB");
  assert.equal(view.warning, true);
  // the tooltip uses the status bar's words, and says what the budget is checked against
  assert.match(view.tooltip, /This file: weights ≈ 25\.1 GiB \(at each model's dtype; 1 of 2 models estimated\)/);
  assert.match(view.tooltip, /Budget 24\.0 GiB: 1 model needs more \(see Problems/);
  assert.match(view.tooltip, /Click to show this file's estimates/);
});

test("a file of module classes only: the class's weights against the budget", () => {
  const classes = { ...summary, models: 0, estimated: 0, label: "weights Σ 344.0 MiB", over_budget: false, over_budget_models: 0 };
  const view = statusView("running", true, classes);
  assert.match(view.tooltip, /This file: weights Σ 344\.0 MiB \(the largest nn\.Module class\)/);
  assert.match(view.tooltip, /Budget 24\.0 GiB: fits/);
  assert.equal(view.warning, false);
  const two = statusView("running", true, { ...summary, over_budget_models: 2 });
  assert.match(two.tooltip, /2 models need more/);
});

test("other states show the state; untrusted says so", () => {
  assert.equal(statusView("starting", true, summary).text, "$(sync~spin) memlens");
  const failed = statusView("failed", false, null);
  assert.equal(failed.warning, true);
  assert.match(failed.tooltip, /failed \(restricted: static hints only\)/);
  assert.equal(statusView("running", true, { ...summary, label: null, over_budget: false }).text, "$(pulse) memlens");
});

test("palette commands pick the profile lens nearest the cursor", () => {
  const lenses = [
    { line: 3, command: "memlens.profile" },
    { line: 3, command: "memlens.compress" },
    { line: 9, command: "" },
    { line: 12, command: "memlens.profile" },
  ];
  assert.equal(loadLineNear(lenses, 0), 3);
  assert.equal(loadLineNear(lenses, 10), 12);
  assert.equal(loadLineNear(lenses, 7), 3); // equal distance: the one above
  assert.equal(loadLineNear([{ line: 9, command: "" }], 9), undefined);
});
