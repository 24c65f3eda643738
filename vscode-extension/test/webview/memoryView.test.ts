import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { fixture } from "../fixtures";
import { Harness, send } from "./harness";

const GIB = 2 ** 30;
let harness: Harness;
before(async () => {
  harness = await Harness.start();
});
after(async () => harness?.stop());

test("a profile report draws totals, a budget line, stacked bars per layer and a table", async () => {
  const page = await harness.open("memory");
  await page.locator(".notice h2").filter({ hasText: "No memory report yet" }).waitFor();
  const message = fixture("report-profile");
  const layers = message.report.estimate.layers;
  assert.equal(message.budget_bytes, 24 * GIB);
  await send(page, { type: "report", view: message.view });
  await page.locator("h1").filter({ hasText: "Profile · Qwen/Qwen2.5-0.5B" }).waitFor();
  assert.equal(await page.locator(".layer-group").count(), layers.length);
  assert.equal(await page.locator(".layers-table tbody tr").count(), layers.length);
  // every decoder layer has weights, KV cache and activations segments
  const decoder = page.locator(".layer-group").nth(1);
  assert.equal(await decoder.locator(".bar-segment").count(), 3);
  assert.equal(await decoder.locator(".bar-label").first().textContent(), "model.layers.0");
  assert.equal(await page.locator(".totals .bar-value").first().textContent(), "945.7 MiB");
  assert.equal(await page.locator(".budget .bar-value").textContent(), "24.0 GiB");
  const budgetLeft = await page.locator(".budget-line").evaluate((e) => parseFloat((e as HTMLElement).style.left));
  assert.equal(budgetLeft, 100); // the budget is far above 945 MiB: the scale is the budget
  const segmentWidth = await page.locator(".totals .seg-weights").evaluate((e) => parseFloat((e as HTMLElement).style.width));
  assert.ok(Math.abs(segmentWidth - (message.report.estimate.weight_bytes / (24 * GIB)) * 100) < 1e-3);
  assert.deepEqual(await page.locator(".legend-item").allTextContents(), ["Weights", "KV cache", "Activations"]);
  assert.ok((await page.locator(".notes").textContent())!.includes("meta-device skeleton"));
  await page.close();
});

test("the table sorts by a column and toggles the direction", async () => {
  const page = await harness.open("memory");
  await send(page, { type: "report", view: fixture("report-profile").view });
  const firstName = () => page.locator(".layers-table tbody tr td").first().textContent();
  await page.getByRole("button", { name: "Weights" }).click();
  assert.equal(await firstName(), "model.embed_tokens");
  assert.equal(await page.locator("th[aria-sort=descending]").textContent(), "Weights ▼");
  await page.getByRole("button", { name: /Weights/ }).click();
  assert.equal(await page.locator("th[aria-sort=ascending]").textContent(), "Weights ▲");
  assert.match((await firstName())!, /^lm_head/); // tied: 0 bytes of its own
  await page.close();
});

test("a measured profile shows measured bars beside the estimate", async () => {
  const page = await harness.open("memory");
  await send(page, { type: "report", view: fixture("report-profile-measured").view });
  await page.locator("h1").filter({ hasText: "Profile · tiny-llama" }).waitFor();
  assert.deepEqual(await page.locator(".totals .bar-label").allTextContents(), ["Estimate (fp32, exact, meta)", "Measured weights", "Measured peak"]);
  const measuredBar = page.locator(".layer-group").nth(1).locator(".bar-measured");
  assert.equal(await measuredBar.locator(".seg-measured").count(), 1);
  assert.equal(await measuredBar.locator(".bar-segment").count(), 3); // weights, KV, activations
  assert.equal(await page.locator(".layers-table th").last().textContent(), "Measured activations");
  assert.match((await page.locator(".figures").textContent())!, /Decode speed\d+\.\d tokens\/s/);
  await page.close();
});

test("a compress report shows before beside after, and quality as not measured", async () => {
  const page = await harness.open("memory");
  await send(page, { type: "report", view: fixture("report-compress").view });
  await page.locator("h1").filter({ hasText: "Compress · Qwen/Qwen2.5-0.5B" }).waitFor();
  assert.deepEqual(await page.locator(".totals .bar-label").allTextContents(), ["Before", "After"]);
  assert.equal(await page.locator(".layer-group").nth(1).locator(".seg-before, .seg-after").count(), 2);
  const figures = await page.locator(".figures").textContent();
  assert.match(figures!, /Perplexitynot measured/);
  await page.close();
});

test("a malformed report shows which field is wrong instead of a chart", async () => {
  const page = await harness.open("memory");
  const view = structuredClone(fixture("report-profile").view);
  delete view.layers[1].bars[0].segments[2].kind;
  await send(page, { type: "report", view });
  const error = page.locator(".notice.error");
  await error.waitFor();
  assert.match((await error.textContent())!, /cannot be drawn.*view\.layers\[1\]\.bars\[0\]\.segments\[2\]\.kind is missing/);
  await page.close();
});
