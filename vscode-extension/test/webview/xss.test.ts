// Strings from reports and spans are data: payloads must show up as literal text, create
// no elements, run nothing, and not even reach the CSP (no violation means no HTML).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Page } from "playwright-core";
import { fixture } from "../fixtures";
import { Harness, posted, send } from "./harness";

const SCRIPT = "<script>window.__xss.push('script')</script>";
const IMG = "<img src=x onerror=\"window.__xss.push('img')\">";
const SVG = "<svg onload=\"window.__xss.push('svg')\"></svg>";
const JS_URL = "javascript:window.__xss.push('url')";

let harness: Harness;
before(async () => {
  harness = await Harness.start();
});
after(async () => harness?.stop());

async function assertInert(page: Page): Promise<void> {
  // give any injected handler a chance to fire (an image error, a load event)
  await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 300)));
  assert.deepEqual(await page.evaluate(() => (window as any).__xss), []);
  assert.deepEqual(await page.evaluate(() => (window as any).__violations), []);
  assert.equal(await page.locator("#root img, #root script, #root iframe, #root a").count(), 0);
  assert.equal(await page.locator("script").count(), 1);
  assert.equal(await page.evaluate(() => document.querySelectorAll("svg svg").length), 0);
}

test("memory view: payloads in model, layer names and notes render as text", async () => {
  const page = await harness.open("memory");
  const view = structuredClone(fixture("report-profile").view);
  view.title = `Profile · ${SCRIPT}`;
  view.layers[0].name = IMG;
  view.rows[0].name = { value: IMG, text: IMG };
  view.rows[1].name = { value: JS_URL, text: JS_URL };
  view.rows[2].kind = { value: SVG, text: SVG };
  view.totals[0].label = SVG;
  view.totals[0].segments[0].text = SCRIPT;
  view.figures[0].text = IMG;
  view.budget.text = SCRIPT;
  view.notes = [SCRIPT, IMG];
  view.summary_rows = []; // the table shows every row, the injected ones too
  view.checkpoint = `/tmp/${SCRIPT}`;
  await send(page, { type: "report", view });
  await page.locator("h1").waitFor();
  assert.equal(await page.locator("h1").textContent(), `Profile · ${SCRIPT}`);
  assert.equal(await page.locator(".layer-group").first().locator(".bar-label").first().textContent(), IMG);
  const cells = await page.locator(".layers-table tbody td").allTextContents();
  assert.ok(cells.includes(IMG) && cells.includes(JS_URL) && cells.includes(SVG));
  assert.equal(await page.locator(".checkpoint .path").textContent(), `/tmp/${SCRIPT}`);
  await page.getByRole("button", { name: "Layer" }).click(); // re-render through sorting
  await assertInert(page);
  await page.close();
});

test("trace view: payloads in services, spans, attributes and paths stay inert", async () => {
  const page = await harness.open("trace");
  const report = structuredClone(fixture("trace-report"));
  report.services = [SVG, "retriever", "generator"];
  report.edges[0].caller = SVG;
  report.edges[1].caller = SVG;
  report.traces[0].root_name = SCRIPT;
  report.nodes[0].name = SVG;
  report.trace.rows[0].name = IMG;
  report.trace.rows[0].service = SCRIPT;
  report.trace.rows[0].attributes = [
    [IMG, SCRIPT],
    ["code.file.path", JS_URL],
    ["code.line.number", "7"],
  ];
  report.trace.rows[0].location = { path: JS_URL, line: 7, function: SVG };
  report.trace.rows[0].location_text = `${JS_URL}:7`;
  report.trace.rows[0].error = true;
  report.trace.rows[0].status_message = IMG;
  report.edges[0].label = SCRIPT;
  report.edges[0].label_lines = [SCRIPT, IMG];
  report.traces[0].trace_id_text = IMG;
  report.traces[0].duration_text = IMG;
  const url = page.url();
  await send(page, { type: "traces", report });
  await page.locator(".span-row").first().waitFor();
  assert.equal(await page.locator(".node-label").first().textContent(), SVG);
  assert.equal(await page.locator(".trace-list tbody td").nth(1).textContent(), IMG);
  assert.equal(await page.locator(".trace-list tbody td").nth(3).textContent(), SCRIPT);
  assert.deepEqual(await page.locator(".edge-label").first().locator("tspan").allTextContents(), [SCRIPT, IMG]);
  await page.locator(".span-row").first().click();
  await page.locator(".span-details h3").waitFor();
  assert.equal(await page.locator(".span-details h3").textContent(), IMG);
  assert.match((await page.locator(".span-details p").textContent())!, /upstream|<img/);
  await assertInert(page);
  // the javascript: path is only data in a message to the extension; the page stayed put
  assert.equal(page.url(), url);
  const messages = await posted(page);
  assert.deepEqual(messages[messages.length - 1], { type: "openLocation", path: JS_URL, line: 7 });
  await page.close();
});
