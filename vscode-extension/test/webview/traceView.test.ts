import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { fixture } from "../fixtures";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../../scripts/codeServer";
import { Harness, posted, send } from "./harness";

const SHOTS = join(REPO_ROOT, "build", "e2e", "webview");
mkdirSync(SHOTS, { recursive: true });

let harness: Harness;
before(async () => {
  harness = await Harness.start();
});
after(async () => harness?.stop());

test("topology, trace list and waterfall from the fixture", async () => {
  const page = await harness.open("trace");
  await page.locator(".notice h2").filter({ hasText: "No traces yet" }).waitFor();
  await send(page, { type: "traces", report: fixture("trace-report") });
  await page.locator("svg.topology").waitFor();
  // the payload's order: services and edges sorted by name
  assert.deepEqual(await page.locator(".node-label").allTextContents(), ["gateway", "generator", "retriever"]);
  // issue 17: "1 errors"; two lines each, so a label fits above its box
  const labels = page.locator(".edge-label");
  assert.deepEqual(await labels.nth(0).locator("tspan").allTextContents(), ["12 calls · 1 error", "p50 34.0 ms · p95 61.5 ms"]);
  assert.deepEqual(await labels.nth(1).locator("tspan").allTextContents(), ["12 calls", "p50 11.2 ms · p95 19.8 ms"]);
  // the recent traces tell apart: start time and trace id
  assert.deepEqual(await page.locator(".trace-list th").allTextContents(), ["Started", "Trace", "Service", "Root span", "Duration", "Spans", "Errors"]);
  const ids = await page.locator(".trace-list .trace-id").allTextContents();
  assert.equal(new Set(ids).size, 2);
  assert.match((await page.locator(".trace-list tbody tr").first().locator("td").first().textContent())!, /^\d\d:\d\d:\d\d$/);
  assert.equal(await page.locator(".edge.has-errors").count(), 1);
  assert.equal(await page.locator(".trace-list tbody tr").count(), 2);
  assert.deepEqual(await page.locator(".span-row .span-name").allTextContents(), ["POST /chat", "GET /search", "sqlite query", "POST /generate", "decode"]);
  // the root spans the whole trace; a child starts at its offset
  const width = await page.locator(".span-row").first().locator(".bar-segment").evaluate((e) => parseFloat((e as HTMLElement).style.width));
  assert.equal(Math.round(width), 100);
  const offset = await page.locator(".span-row").nth(3).locator(".bar-offset").evaluate((e) => parseFloat((e as HTMLElement).style.width));
  assert.ok(Math.abs(offset - (14 / 48.2) * 100) < 0.01);
  await page.close();
});

test("an empty report says how to get traces", async () => {
  const page = await harness.open("trace");
  await send(page, { type: "traces", report: fixture("trace-report") });
  await page.locator("svg.topology").waitFor();
  // what the server sends without a trace store (trace_view.empty_trace_report)
  await send(page, { type: "traces", report: { version: 1, services: [], nodes: [], edges: [], traces: [], trace: null, jaeger_url: null } });
  await page.locator(".notice h2").filter({ hasText: "No traces yet" }).waitFor();
  assert.equal(await page.locator("svg.topology").count(), 0);
  await page.close();
});

test("clicking a span posts its code location; trace rows and Jaeger post their ids", async () => {
  const page = await harness.open("trace");
  await send(page, { type: "traces", report: fixture("trace-report") });
  await page.locator(".span-row").filter({ hasText: "GET /search" }).click();
  await page.locator(".span-details h3").filter({ hasText: "GET /search" }).waitFor();
  assert.match((await page.locator(".attributes").textContent())!, /code\.filepathservices\/retriever\.py/);
  await page.locator(".span-row").filter({ hasText: "sqlite query" }).click(); // no location: no message
  await page.locator(".trace-list tbody tr").nth(1).click();
  await page.getByRole("button", { name: "Open in Jaeger" }).click();
  const messages = (await posted(page)).filter((m) => m.type !== "ready");
  assert.deepEqual(messages, [
    { type: "openLocation", path: "services/retriever.py", line: 14 },
    { type: "openTrace", traceId: "5b8efff798038103d269b633813fc60c" },
    { type: "openJaeger", traceId: "4bf92f3577b34da6a3ce929d0e0e4736" },
  ]);
  await page.close();
});

test("without a Jaeger URL there is no Jaeger button", async () => {
  const page = await harness.open("trace");
  const report = fixture("trace-report");
  await send(page, { type: "traces", report: { ...report, jaeger_url: null, trace: { ...report.trace, jaeger_url: null } } });
  await page.locator(".span-row").first().waitFor();
  assert.equal(await page.getByRole("button", { name: "Open in Jaeger" }).count(), 0);
  await page.close();
});

test("a malformed trace report names the bad field", async () => {
  const page = await harness.open("trace");
  await send(page, { type: "traces", report: { version: 1, services: [], nodes: [], edges: [], traces: [{ trace_id: "xyz" }] } });
  await page.locator(".notice.error").waitFor();
  assert.match((await page.locator(".notice.error").textContent())!, /traceReport\.traces\[0\]\.trace_id is not 32 lowercase hex digits/);
  await page.close();
});

for (const width of [500, 700]) {
  test(`at ${width} px the topology's labels overlap neither boxes nor each other`, async () => {
    const page = await harness.open("trace");
    await page.setViewportSize({ width, height: 800 });
    await send(page, { type: "traces", report: fixture("trace-report") });
    await page.locator("svg.topology").waitFor();
    const boxes = await page.evaluate(() => {
      const rect = (e: Element) => {
        const r = e.getBoundingClientRect();
        return { left: r.left, right: r.right, top: r.top, bottom: r.bottom };
      };
      return {
        labels: Array.from(document.querySelectorAll(".edge-label")).map(rect),
        nodes: Array.from(document.querySelectorAll(".node rect")).map(rect),
        overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
      };
    });
    type Box = { left: number; right: number; top: number; bottom: number };
    const overlap = (a: Box, b: Box) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    for (const [i, label] of boxes.labels.entries()) {
      assert.ok(!boxes.nodes.some((n) => overlap(label, n)), `label ${i} overlaps a service box`);
      assert.ok(!boxes.labels.some((other, j) => j !== i && overlap(label, other)), `label ${i} overlaps another label`);
    }
    assert.equal(boxes.overflow, 0, "the page scrolls sideways");
    await page.screenshot({ path: `${SHOTS}/trace-view-${width}px.png`, fullPage: true });
    await page.close();
  });
}
