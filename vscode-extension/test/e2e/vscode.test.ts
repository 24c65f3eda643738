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
    await bench.line(LLAMA_LOAD).filter({ hasText: HINT }).waitFor();
    const text = (await bench.line(LLAMA_LOAD).textContent())!.replace(/\u00a0/g, " ");
    assert.ok(text.endsWith(`dtype=torch.float32)${HINT}`), text);
    // the status bar has the file's total, saying what it counts
    await statusItem().waitFor();
    await bench.shot("02-inlay-hint");
  });

  it("shows the file's estimates when the status bar is clicked", async () => {
    await statusItem().click();
    const view = await bench.webview("Estimate · serve.py");
    assert.deepEqual(await view.locator(".total-bar .bar-label").allTextContents(), [
      "meta-llama/Llama-2-7b-hf (fp32)",
      "Qwen/Qwen2.5-0.5B (bf16)",
    ]);
    await assertSideBySide(view);
    await bench.shot("02b-status-bar-file-estimates");
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
    await bench.line(LLAMA_LOAD).click();
    await bench.page.locator(".editor-instance .codelens-decoration").first().getByText("Profile memory").click();
    const view = await bench.webview("Profile · meta-llama/Llama-2-7b-hf");
    await assertSideBySide(view);
    assert.equal(await view.locator(".layer-group").count(), 35); // embeddings, 32 decoder layers, norm, lm_head
    assert.ok((await view.locator(".layer-group .bar-segment").count()) >= 3 * 32);
    assert.equal(await view.locator(".budget .bar-value").textContent(), "24.0 GiB");
    assert.match((await view.locator(".notes").textContent())!, /meta-device skeleton/);
    await bench.shot("05-memory-view");
  });

  it("restarts the server right after a Profile and ends with it running", async () => {
    // issue 17: the restart timed out stopping the server and never started it again
    await bench.runCommand("memlens: Restart server");
    await bench.page.locator(".statusbar-item").filter({ hasText: "memlens" }).filter({ hasNotText: "weights" }).first().waitFor();
    await statusItem().waitFor(); // running again, with the file's figures
    await bench.line(LLAMA_LOAD).filter({ hasText: HINT }).waitFor();
    assert.equal(await bench.page.locator(".notifications-toasts").filter({ hasText: "timed out" }).count(), 0);
    await bench.shot("05b-restarted-after-profile");
  });

  it("runs Compress model from the palette: a quick pick of schemes with their sizes", async () => {
    await bench.line(LLAMA_LOAD).click();
    await bench.runCommand("memlens: Compress model");
    const rows = bench.page.locator(".quick-input-list .monaco-list-row");
    await rows.filter({ hasText: "INT8" }).first().waitFor();
    const offered = (await rows.allTextContents()).map((t) => t.replace(/\u00a0/g, " "));
    assert.ok(offered.some((t) => t.includes("INT4, group 128") && t.includes("(from 25.1 GiB)") && t.includes("recommended")), offered.join("\n"));
    assert.ok(offered.some((t) => t.includes("Auto, error ≤ 2%")), offered.join("\n"));
    await bench.shot("06a-compress-picker");
    await rows.filter({ hasText: "every matrix INT8" }).first().click();
    const view = await bench.webview("Compress · meta-llama/Llama-2-7b-hf");
    assert.match((await view.locator(".subtitle").textContent())!, /^int8/);
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

  it("applies the bf16 quick fix and its warnings are gone", async () => {
    await bench.page.locator(".tab").filter({ hasText: "serve.py" }).click();
    // the server restarted with the window: its hint on the load says it has read the file again
    await bench.line(LLAMA_LOAD).filter({ hasText: HINT }).waitFor();
    await bench.applyQuickFix(LLAMA_LOAD, "torch.bfloat16");
    await bench.line('from_pretrained("meta-llama/Llama-2-7b-hf", dtype=torch.bfloat16)').filter({ hasText: "weights ≈ 12.6 GiB bf16" }).waitFor();
    await bench.page.keyboard.press("Control+Shift+M");
    const problems = bench.page.locator(".markers-panel .monaco-list-row");
    await bench.until(async () => (await problems.filter({ hasText: "Llama-2-7b-hf" }).count()) === 0 && (await problems.filter({ hasText: "float32 load" }).count()) === 0, "the over-budget and fp32 warnings gone");
    await bench.shot("09-quick-fix-applied");
  });

  it("shows a training step's peak at the Trainer and its quick fix brings it under the budget", async () => {
    await bench.openFile("train_lora.py");
    // the Trainer lies below the fold: its over-budget warning in the Problems panel leads there
    await bench.page.keyboard.press("Control+Shift+M");
    await bench.page.locator(".markers-panel .monaco-list-row").filter({ hasText: "train-over-budget" }).first().click();
    const hint = bench.line(")").filter({ hasText: "train step ≈ 39.2 GiB · batch 8 × 1024" });
    await bench.until(async () => (await hint.count()) > 0, "the training step's hint at the Trainer");
    await bench.shot("10-training-hint");
    await bench.applyQuickFix("trainer = Trainer(", "enable gradient checkpointing (train step ≈ 20.2 GiB)");
    await bench.line("gradient_checkpointing=True").waitFor();
    await bench.line(")").filter({ hasText: "train step ≈ 20.2 GiB" }).first().waitFor();
    await bench.shot("11-training-quick-fix-applied");
  });

  it("runs Profile training step and draws the training report", async () => {
    await bench.page.locator(".editor-instance .codelens-decoration").getByText("Profile training step").first().click();
    const view = await bench.webview("Training step · Qwen/Qwen2.5-0.5B");
    assert.deepEqual(await view.locator(".total-bar .bar-label").allTextContents(), ["Estimate · peak at backward start"]);
    assert.match((await view.locator(".notes").textContent())!, /not on disk/);
    await bench.shot("12-training-memory-view");
  });
});

const HINT = "weights ≈ 25.1 GiB fp32 · KV 1.0 MiB/tok";

function statusItem() {
  return bench.page.locator(".statusbar-item").filter({ hasText: "memlens weights ≈ 26.0 GiB · 2 models" }).first();
}

/** The view is drawn at a side-by-side width (the editor beside it) without spilling sideways. */
async function assertSideBySide(view: import("playwright-core").Frame): Promise<void> {
  const { width, overflow } = await view.evaluate(() => ({
    width: document.documentElement.clientWidth,
    overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
  }));
  assert.ok(width >= 400 && width <= 760, `the view is ${width} px wide`);
  assert.equal(overflow, 0, "the view scrolls sideways");
}
