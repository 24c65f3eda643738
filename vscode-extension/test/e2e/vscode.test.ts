// End to end: the packaged extension in a real VS Code (code-server) in headless Chromium,
// on a copy of examples/, talking to the real language server and worker. One screenshot
// per step goes to build/e2e/trusted/ at the repository root.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Workbench } from "./workbench";

const LLAMA_LOAD = 'from_pretrained("meta-llama/Llama-2-7b-hf", dtype';
let bench: Workbench;

describe("memlens in code-server (trusted workspace)", { timeout: 15 * 60_000 }, () => {
  before(async () => {
    bench = await Workbench.start("trusted");
  });
  after(async () => bench?.stop());

  it("opens the example workspace with the extension active", async () => {
    await bench.openFile("serve.py");
    await bench.line(LLAMA_LOAD).waitFor();
    await bench.page.locator(".statusbar-item").filter({ hasText: "memlens" }).first().waitFor();
    await bench.shot("01-serve-py-open");
  });

  it("shows the inlay hint at the from_pretrained line", async () => {
    await bench.line(LLAMA_LOAD).filter({ hasText: "≈ 25.1 GiB fp32 · KV 1.0 MiB/token" }).waitFor();
    const text = (await bench.line(LLAMA_LOAD).textContent())!.replace(/\u00a0/g, " ");
    assert.ok(text.endsWith("dtype=torch.float32)≈ 25.1 GiB fp32 · KV 1.0 MiB/token"), text);
    // the status bar has the file's total
    await bench.page.locator(".statusbar-item").filter({ hasText: "memlens ≈ 26.0 GiB · 2 models" }).waitFor();
    await bench.shot("02-inlay-hint");
  });

  it("lists the over-budget diagnostic in the Problems panel", async () => {
    await bench.line(LLAMA_LOAD).click();
    await bench.page.keyboard.press("Control+Shift+M");
    const problem = bench.page.locator(".markers-panel .monaco-list-row").filter({ hasText: "24.0 GiB memory budget" });
    await problem.first().waitFor();
    assert.match((await problem.first().textContent())!, /Llama-2-7b-hf/);
    await bench.shot("03-problems-panel");
  });

  it("puts the Profile and Compress lenses above the loads", async () => {
    const lenses = bench.page.locator(".editor-instance .codelens-decoration");
    await lenses.first().waitFor();
    assert.deepEqual(
      (await lenses.allTextContents()).map((t) => t.replace(/\u00a0/g, " ")),
      ["Profile memory | Compress…", "Profile memory | Compress…"],
    );
    await bench.shot("04-code-lens");
  });

  it("runs Profile memory and draws the memory view with bars", async () => {
    await bench.page.locator(".editor-instance .codelens-decoration").first().getByText("Profile memory").click();
    const view = await bench.webview("Profile · meta-llama/Llama-2-7b-hf");
    assert.equal(await view.locator(".layer-group").count(), 35); // embeddings, 32 decoder layers, norm, lm_head
    assert.ok((await view.locator(".layer-group .bar-segment").count()) >= 3 * 32);
    assert.equal(await view.locator(".budget .bar-value").textContent(), "24.0 GiB");
    assert.match((await view.locator(".notes").textContent())!, /meta-device skeleton/);
    await bench.shot("05-memory-view");
  });

  it("runs Compress model from the palette on the load at the cursor", async () => {
    await bench.line(LLAMA_LOAD).click();
    await bench.runCommand("memlens: Compress model");
    const view = await bench.webview("Compress · meta-llama/Llama-2-7b-hf");
    assert.deepEqual(await view.locator(".total-bar .bar-label").allTextContents(), ["Before", "After"]);
    assert.ok((await view.locator(".layer-group .seg-after").count()) >= 32);
    assert.match((await view.locator(".figures").textContent())!, /Saved/);
    await bench.shot("06-compress-view");
  });

  it("opens the trace view from the palette", async () => {
    await bench.runCommand("memlens: Show traces");
    const view = await bench.webview("No traces yet");
    assert.match((await view.locator(".notice").textContent())!, /memlens run/);
    await bench.shot("07-trace-view");
  });

  it("shows the same trace and memory views again after a window reload", async () => {
    await bench.runCommand("Developer: Reload Window");
    // the trace view was in front: VS Code restores it at once, drawing the report it kept
    const traces = await bench.webview("No traces yet");
    assert.match((await traces.locator(".notice").textContent())!, /memlens run/);
    // the memory view restores when its tab is shown again
    await bench.page.locator(".tab").filter({ hasText: "memlens: Memory" }).click();
    const memory = await bench.webview("Compress · meta-llama/Llama-2-7b-hf");
    assert.deepEqual(await memory.locator(".total-bar .bar-label").allTextContents(), ["Before", "After"]);
    assert.match((await memory.locator(".figures").textContent())!, /Saved/);
    await bench.shot("08-views-after-reload");
  });
});
