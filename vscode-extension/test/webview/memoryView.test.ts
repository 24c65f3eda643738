import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { fixture } from "../fixtures";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../../scripts/codeServer";
import { Harness, posted, send } from "./harness";
import { SEGMENT_KINDS } from "../../src/webviews/model/memory";

/** Screenshots of the views at a side-by-side width: build/e2e/webview/. */
const SHOTS = join(REPO_ROOT, "build", "e2e", "webview");
mkdirSync(SHOTS, { recursive: true });

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
  // the table groups the decoder layers as `memlens estimate` does; every layer on demand
  assert.equal(await page.locator(".layers-table tbody tr").count(), message.view.summary_rows.length);
  assert.ok(message.view.summary_rows.length < layers.length);
  assert.ok((await page.locator(".layers-table tbody").textContent())!.includes("model.layers.* ×24"));
  await page.getByRole("button", { name: `Show all ${layers.length} layers` }).click();
  assert.equal(await page.locator(".layers-table tbody tr").count(), layers.length);
  await page.getByRole("button", { name: "Group by layer kind" }).click();
  assert.equal(await page.locator(".layers-table tbody tr").count(), message.view.summary_rows.length);
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
  assert.deepEqual(await page.locator(".legend-item").allTextContents(), ["Weights", "KV cache", "Prefill activations (estimate)"]);
  assert.ok((await page.locator(".notes").textContent())!.includes("meta-device skeleton"));
  await page.close();
});

test("the table sorts by a column and toggles the direction", async () => {
  const page = await harness.open("memory");
  await send(page, { type: "report", view: fixture("report-profile").view });
  const firstName = () => page.locator(".layers-table tbody tr td").first().textContent();
  await page.getByRole("button", { name: /^Show all/ }).click();
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
  assert.equal(await measuredBar.locator(".bar-segment").count(), 3); // weights, KV, largest output
  // issue 17: "Measured activations" beside "Activations" named different quantities alike
  assert.equal(await measuredBar.locator(".seg-output").count(), 1);
  assert.equal(await page.locator(".layers-table th").last().textContent(), "Largest output");
  assert.match((await page.locator(".figures").textContent())!, /Decode speed\d+\.\d tokens\/s \(without profiler hooks\)/);
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
  // "Before" says what it counts
  assert.match(figures!, /Before \(\d+ compressed layers\)/);
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

test("a measured training step draws estimate and measured bars to each peak, its legend and the per-block table", async () => {
  const page = await harness.open("memory");
  const { view, report } = fixture("report-training-measured");
  await send(page, { type: "report", view });
  await page.locator("h1").filter({ hasText: "Training step · tiny-llama · full · adamw · fp32 · batch 2 × 64" }).waitFor();
  assert.deepEqual(await page.locator(".totals .bar-label").allTextContents(), [`Estimate · peak at ${report.estimate.peak_phase}`, "Measured · peak on cpu"]);
  const estimateBar = page.locator(".totals .bar-row").first();
  assert.deepEqual(await estimateBar.locator(".bar-segment").evaluateAll((segments) => segments.map((s) => s.className.replace("bar-segment ", ""))), [
    "seg-weights",
    "seg-optimizer",
    "seg-saved",
    "seg-temporaries",
  ]);
  // the larger peak fills the track; the bar's segments add up to its own peak
  const widths = await page.locator(".totals .bar-row").evaluateAll((rows) => rows.map((r) => Array.from(r.querySelectorAll<HTMLElement>(".bar-segment")).reduce((sum, s) => sum + parseFloat(s.style.width), 0)));
  const [estimated, measured] = [report.estimate.peak_bytes, report.measured.peak_bytes];
  assert.ok(Math.abs(widths[0] - (estimated / Math.max(estimated, measured)) * 100) < 1e-3);
  assert.ok(Math.abs(widths[1] - (measured / Math.max(estimated, measured)) * 100) < 1e-3);
  assert.equal(await page.locator(".totals .bar-row").nth(1).locator(".seg-transient").count(), 1);
  assert.deepEqual(await page.locator(".legend-item").allTextContents(), [
    "Weights",
    "Optimizer states",
    "Activations saved for backward",
    "Step temporaries (estimate)",
    "Held during the step (measured)",
    "Gradients",
  ]);
  assert.match((await page.locator(".figures").textContent())!, /Gradients, measured[\d.]+ KiB \(estimate exact\)/);
  // the table: training columns, the decoder layers grouped, every block on demand
  assert.deepEqual(await page.locator(".layers-table th").allTextContents(), view.columns.map((c: { title: string }) => c.title));
  assert.ok((await page.locator(".layers-table th").allTextContents()).includes("Saved with ckpt"));
  assert.equal(await page.locator(".layers-table tbody tr").count(), view.summary_rows.length);
  assert.ok((await page.locator(".layers-table tbody").textContent())!.includes("model.layers.* ×2"));
  await page.getByRole("button", { name: `Show all ${report.estimate.blocks.length} layers` }).click();
  assert.equal(await page.locator(".layers-table tbody tr").count(), report.estimate.blocks.length);
  // a block's bar: everything it allocates during a step
  const layer = page.locator(".layer-group").nth(1);
  assert.equal(await layer.locator(".bar-label").first().textContent(), "model.layers.0");
  assert.equal(await layer.locator(".seg-weights, .seg-gradients, .seg-optimizer, .seg-saved").count(), 4);
  await page.close();
});

test("a LoRA training estimate over the budget draws its adapters and marks the budget", async () => {
  const page = await harness.open("memory");
  const { view, report, budget_bytes } = fixture("report-training");
  assert.ok(report.estimate.peak_bytes > budget_bytes);
  await send(page, { type: "report", view });
  await page.locator("h1").filter({ hasText: "Training step · meta-llama/Llama-2-7b-hf · lora:r16 · adamw · bf16-mixed · batch 8 × 512" }).waitFor();
  assert.equal(await page.locator(".totals .seg-adapters").count(), 1);
  assert.equal(await page.locator(".budget .bar-value.over").textContent(), "24.0 GiB");
  const budgetLeft = await page.locator(".budget-line").evaluate((e) => parseFloat((e as HTMLElement).style.left));
  assert.ok(Math.abs(budgetLeft - (budget_bytes / report.estimate.peak_bytes) * 100) < 1e-3);
  assert.match((await page.locator(".figures").textContent())!, /Trainable parameters8\.4M of 6\.7B \(0\.12%\)/);
  await page.close();
});

/** VS Code's default chart colours (Light+ and Dark+) and the track's background. */
const THEMES: Record<string, Record<string, string>> = {
  light: { red: "#e51400", blue: "#1a85ff", yellow: "#bf8803", orange: "#d18616", green: "#388a34", purple: "#652d90", widget: "#f3f3f3", editor: "#ffffff", foreground: "#616161" },
  dark: { red: "#f14c4c", blue: "#3794ff", yellow: "#cca700", orange: "#d18616", green: "#89d185", purple: "#b180d7", widget: "#252526", editor: "#1e1e1e", foreground: "#cccccc" },
};
/** The kinds a training report can draw together. */
const TRAINING_KINDS = ["weights", "adapters", "gradients", "optimizer", "master", "saved", "temporaries", "transient"];

for (const [theme, colours] of Object.entries(THEMES)) {
  test(`in the ${theme} theme every segment kind has a colour, the training kinds each their own, all set off from the track`, async () => {
    const page = await harness.open("memory");
    const view = structuredClone(fixture("report-training").view);
    view.legend = SEGMENT_KINDS.map((kind) => ({ kind, label: kind }));
    await send(page, { type: "report", view });
    await page.locator(".legend-item").first().waitFor();
    const drawn: Record<string, { paint: string; contrast: number }> = await page.evaluate((c) => {
      const root = document.documentElement.style;
      for (const name of ["red", "blue", "yellow", "orange", "green", "purple"]) {
        root.setProperty(`--vscode-charts-${name}`, c[name]);
      }
      root.setProperty("--vscode-editorWidget-background", c.widget);
      root.setProperty("--vscode-editor-background", c.editor);
      root.setProperty("--vscode-foreground", c.foreground);
      const context = document.createElement("canvas").getContext("2d", { willReadFrequently: true })!;
      const luminance = (css: string) => {
        context.clearRect(0, 0, 1, 1);
        context.fillStyle = css;
        context.fillRect(0, 0, 1, 1);
        const [r, g, b, a] = context.getImageData(0, 0, 1, 1).data;
        const linear = (v: number) => ((v /= 255) <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
        return a === 0 ? null : 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
      };
      const track = luminance(c.widget)!;
      const out: Record<string, { paint: string; contrast: number }> = {};
      for (const swatch of Array.from(document.querySelectorAll<HTMLElement>(".legend .swatch"))) {
        const style = getComputedStyle(swatch);
        // a solid colour, or the first colour of a striped one
        const colour = style.backgroundImage === "none" ? style.backgroundColor : (style.backgroundImage.match(/(rgba?|color)\([^)]*\)/)?.[0] ?? "transparent");
        const l = luminance(colour);
        const kind = swatch.className.replace("swatch seg-", "");
        out[kind] = { paint: `${style.backgroundColor} ${style.backgroundImage}`, contrast: l === null ? 0 : (Math.max(l, track) + 0.05) / (Math.min(l, track) + 0.05) };
      }
      return out;
    }, colours);
    assert.deepEqual(Object.keys(drawn).sort(), [...SEGMENT_KINDS].sort());
    for (const [kind, { contrast }] of Object.entries(drawn)) {
      assert.ok(contrast >= 1.8, `${kind} barely differs from the track in the ${theme} theme (contrast ${contrast.toFixed(2)})`);
    }
    const paints = TRAINING_KINDS.map((kind) => drawn[kind].paint);
    assert.equal(new Set(paints).size, TRAINING_KINDS.length, `two training kinds look alike: ${paints.join(" / ")}`);
    await page.screenshot({ path: `${SHOTS}/memory-view-training-${theme}.png`, fullPage: true });
    await page.close();
  });
}

function compressView(): any {
  const view = structuredClone(fixture("report-compress").view);
  view.checkpoint = "/home/me/.cache/memlens/compressed/SmolLM2-135M-int4-g64";
  return view;
}

test("the checkpoint's folder is shown with a way to open it", async () => {
  const page = await harness.open("memory");
  await send(page, { type: "report", view: compressView() });
  await page.locator(".checkpoint").waitFor();
  assert.match((await page.locator(".checkpoint").textContent())!, /SmolLM2-135M-int4-g64/);
  await page.getByRole("button", { name: "Reveal" }).click();
  const messages = (await posted(page)).filter((m) => m.type !== "ready");
  assert.deepEqual(messages, [{ type: "revealPath", path: "/home/me/.cache/memlens/compressed/SmolLM2-135M-int4-g64" }]);
  await page.close();
});

test("a run in progress marks the view as updating; its report clears the mark and keeps the scroll", async () => {
  const page = await harness.open("memory");
  await page.setViewportSize({ width: 600, height: 400 });
  await send(page, { type: "report", view: fixture("report-profile").view });
  await page.locator(".layers-table").waitFor();
  await page.evaluate(() => window.scrollTo(0, 300));
  await send(page, { type: "updating", text: "Profiling…" });
  await page.locator(".updating-banner").filter({ hasText: "Updating: Profiling… This is the previous report." }).waitFor();
  assert.equal(await page.locator("#root.is-updating").count(), 1);
  await send(page, { type: "report", view: fixture("report-profile").view });
  await page.locator(".updating-banner").waitFor({ state: "detached" });
  assert.equal(await page.locator("#root.is-updating").count(), 0);
  assert.equal(await page.evaluate(() => window.scrollY), 300); // issue 17: it reset to the top
  await page.close();
});

const SHOT_NAMES: Record<string, string> = { "report-profile-measured": "memory-view", "report-training-measured": "memory-view-training" };
for (const [name, shot] of Object.entries(SHOT_NAMES)) {
  for (const width of [500, 700]) {
    test(`${name} at ${width} px (a panel beside the editor): nothing spills sideways and total labels are whole`, async () => {
      const page = await harness.open("memory");
      await page.setViewportSize({ width, height: 800 });
      await send(page, { type: "report", view: fixture(name).view });
      await page.locator(".layers-table").waitFor();
      await page.getByRole("button", { name: /^Show all/ }).click();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.equal(overflow, 0, "the page scrolls sideways");
      for (const label of await page.locator(".total-bar .bar-label").all()) {
        const cut = await label.evaluate((e) => e.scrollWidth > e.clientWidth);
        assert.equal(cut, false, `truncated: ${await label.textContent()}`);
      }
      // the wide table scrolls inside its own box, its cells on one line
      const heights = await page.locator(".layers-table tbody tr").first().locator("td").evaluateAll((cells) => cells.map((c) => (c as HTMLElement).offsetHeight));
      assert.equal(new Set(heights).size, 1);
      await page.screenshot({ path: `${SHOTS}/${shot}-${width}px.png`, fullPage: true });
      await page.close();
    });
  }
}
