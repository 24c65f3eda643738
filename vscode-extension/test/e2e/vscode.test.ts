// End to end: the packaged extension in a real VS Code (code-server) in headless Chromium,
// on a copy of examples/, talking to the real language server and worker. One screenshot
// per step goes to build/e2e/ at the repository root.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Browser, Frame, Page, chromium } from "playwright-core";
import { CodeServer, REPO_ROOT, copyExamples } from "../../scripts/codeServer";
import { CHROMIUM, CHROMIUM_ARGS } from "../webview/harness";

const OUT = join(REPO_ROOT, "build", "e2e");
const WORKSPACE = join(OUT, "workspace");
// Generous: CI machines are slow, and the first Profile imports torch in the worker.
const STEP_MS = 180_000;

let server: CodeServer;
let browser: Browser;
let page: Page;
const timings: Record<string, number> = {};
const started = Date.now();

async function shot(name: string): Promise<void> {
  timings[name] = (Date.now() - started) / 1000;
  await page.screenshot({ path: join(OUT, `${name}.png`) });
}

/** The editor line that loads Llama-2 (the file's first from_pretrained). */
function loadLine() {
  return page.locator(".editor-instance .view-line").filter({ hasText: 'from_pretrained("meta-llama/Llama-2-7b-hf", dtype' });
}

/** The webview page (VS Code nests it two iframes deep) whose content shows `text`. */
async function webview(text: string): Promise<Frame> {
  const deadline = Date.now() + STEP_MS;
  while (Date.now() < deadline) {
    for (const frame of page.frames()) {
      const hits = await frame.locator("#root").filter({ hasText: text }).count().catch(() => 0);
      if (hits > 0) {
        return frame;
      }
    }
    await page.waitForTimeout(250); // frames come and go; poll until the view has drawn
  }
  throw new Error(`no webview shows "${text}" after ${STEP_MS / 1000} s`);
}

/** Runs a command from the Command Palette by its title. */
async function runCommand(title: string): Promise<void> {
  await page.keyboard.press("Control+Shift+P");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor();
  await input.fill(`>${title}`);
  await page.locator(".quick-input-list .monaco-list-row").filter({ hasText: title }).first().click();
}

describe("memlens in code-server", { timeout: 15 * 60_000 }, () => {
  before(async () => {
    mkdirSync(OUT, { recursive: true });
    copyExamples(WORKSPACE);
    server = await CodeServer.start({
      home: join(OUT, "code-server"),
      workspace: WORKSPACE,
      settings: { "memlens.memoryBudget": "24GiB" },
      env: { HF_HUB_OFFLINE: "1", MEMLENS_OFFLINE: "1" },
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60_000 });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.setDefaultTimeout(STEP_MS);
  });

  after(async () => {
    writeFileSync(join(OUT, "timings.json"), JSON.stringify(timings, null, 1));
    await browser?.close();
    server?.stop();
  });

  it("opens the example workspace with the extension active", async () => {
    await page.goto(server.folderUrl(WORKSPACE));
    await page.locator(".explorer-folders-view .monaco-list-row").filter({ hasText: "serve.py" }).click();
    await loadLine().waitFor();
    await page.locator(".statusbar-item").filter({ hasText: "memlens" }).first().waitFor();
    await shot("01-serve-py-open");
  });

  it("shows the inlay hint at the from_pretrained line", async () => {
    await loadLine().filter({ hasText: "≈ 25.1 GiB fp32 · KV 1.0 MiB/token" }).waitFor();
    const text = (await loadLine().textContent())!.replace(/\u00a0/g, " ");
    assert.ok(text.endsWith("dtype=torch.float32)≈ 25.1 GiB fp32 · KV 1.0 MiB/token"), text);
    // the status bar has the file's total
    await page.locator(".statusbar-item").filter({ hasText: "memlens ≈ 26.0 GiB · 2 models" }).waitFor();
    await shot("02-inlay-hint");
  });

  it("lists the over-budget diagnostic in the Problems panel", async () => {
    await page.locator(".editor-instance .view-lines").first().click();
    await page.keyboard.press("Control+Shift+M");
    const problem = page.locator(".markers-panel .monaco-list-row").filter({ hasText: "24.0 GiB memory budget" });
    await problem.first().waitFor();
    const text = await problem.first().textContent();
    assert.match(text!, /Llama-2-7b-hf/);
    await shot("03-problems-panel");
  });

  it("puts the Profile and Compress lenses above the load", async () => {
    const lenses = page.locator(".editor-instance .codelens-decoration");
    await lenses.first().waitFor();
    assert.deepEqual(
      (await lenses.allTextContents()).map((t) => t.replace(/\u00a0/g, " ")),
      ["Profile memory | Compress…", "Profile memory | Compress…"],
    );
    await shot("04-code-lens");
  });

  it("runs Profile memory and draws the memory view with bars", async () => {
    await page.locator(".editor-instance .codelens-decoration").first().getByText("Profile memory").click();
    const view = await webview("Profile · meta-llama/Llama-2-7b-hf");
    const layers = await view.locator(".layer-group").count();
    assert.equal(layers, 35); // embeddings, 32 decoder layers, final norm, lm_head
    assert.ok((await view.locator(".layer-group .bar-segment").count()) >= 3 * 32);
    assert.equal(await view.locator(".budget .bar-value").textContent(), "24.0 GiB");
    assert.match((await view.locator(".notes").textContent())!, /meta-device skeleton/);
    await shot("05-memory-view");
  });

  it("runs Compress model from the palette on the load at the cursor", async () => {
    await loadLine().click();
    await runCommand("memlens: Compress model");
    const view = await webview("Compress · meta-llama/Llama-2-7b-hf");
    assert.deepEqual(await view.locator(".total-bar .bar-label").allTextContents(), ["Before", "After"]);
    assert.ok((await view.locator(".layer-group .seg-after").count()) >= 32);
    assert.match((await view.locator(".figures").textContent())!, /Saved/);
    await shot("06-compress-view");
  });

  it("opens the trace view from the palette", async () => {
    await runCommand("memlens: Show traces");
    const view = await webview("No traces yet");
    assert.match((await view.locator(".notice").textContent())!, /memlens run/);
    await shot("07-trace-view");
  });
});
