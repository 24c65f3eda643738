// Both views keep the last data message as their webview state (media/src/dom.ts) and draw
// it again when the page is reloaded, as VS Code reloads a restored panel.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { fixture } from "../fixtures";
import { Harness, send } from "./harness";

let harness: Harness;
before(async () => {
  harness = await Harness.start();
});
after(async () => harness?.stop());

test("a reloaded memory view draws the report it showed before", async () => {
  const page = await harness.open("memory");
  await send(page, { type: "report", view: fixture("report-compress").view });
  await page.locator("h1").filter({ hasText: "Compress · Qwen/Qwen2.5-0.5B" }).waitFor();
  await page.reload();
  await page.locator("h1").filter({ hasText: "Compress · Qwen/Qwen2.5-0.5B" }).waitFor();
  assert.deepEqual(await page.locator(".totals .bar-label").allTextContents(), ["Before", "After"]);
  await page.close();
});

test("a reloaded memory view draws the training report it showed before", async () => {
  const page = await harness.open("memory");
  const { view } = fixture("report-training-measured");
  await send(page, { type: "report", view });
  await page.locator(".totals .seg-transient").waitFor();
  await page.reload();
  await page.locator("h1").filter({ hasText: "Training step · tiny-llama" }).waitFor();
  assert.deepEqual(await page.locator(".totals .bar-label").allTextContents(), view.totals.map((bar: { label: string }) => bar.label));
  assert.equal(await page.locator(".totals .seg-transient").count(), 1);
  await page.close();
});

test("a panel whose state holds a version-2 report (from before the training kinds) still draws it after the reload", async () => {
  const page = await harness.open("memory");
  await send(page, { type: "report", view: { ...fixture("report-compress").view, version: 2 } });
  await page.locator("h1").filter({ hasText: "Compress · Qwen/Qwen2.5-0.5B" }).waitFor();
  await page.reload();
  await page.locator("h1").filter({ hasText: "Compress · Qwen/Qwen2.5-0.5B" }).waitFor();
  assert.equal(await page.locator(".notice.error").count(), 0);
  await page.close();
});

test("a reloaded trace view draws the traces it showed before", async () => {
  const page = await harness.open("trace");
  await send(page, { type: "traces", report: fixture("trace-report") });
  await page.locator(".span-row").first().waitFor();
  const spans = await page.locator(".span-row").count();
  await page.reload();
  await page.locator(".span-row").first().waitFor();
  assert.equal(await page.locator(".span-row").count(), spans);
  await page.close();
});
