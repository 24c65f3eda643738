// End to end in an untrusted workspace (Workspace Trust on; code-server opens a folder it
// has not been told to trust in Restricted Mode):
// static hints still show; no Profile/Compress lenses, no worker commands
// (Estimate, Profile, Compress) in the palette.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Workbench } from "./workbench";

let bench: Workbench;

describe("memlens in code-server (untrusted workspace)", { timeout: 15 * 60_000 }, () => {
  before(async () => {
    bench = await Workbench.start("untrusted", { workspaceTrust: true });
  });
  after(async () => bench?.stop());

  it("starts in Restricted Mode", async () => {
    await bench.page.locator(".statusbar-item").filter({ hasText: "Restricted Mode" }).first().waitFor();
    await bench.shot("01-restricted");
  });

  it("shows static hints and class totals but no worker lenses", async () => {
    await bench.openFile("serve.py");
    await bench.line("Llama-2-7b-hf\", dtype").filter({ hasText: "≈ 25.1 GiB fp32" }).waitFor();
    await bench.openFile("model.py");
    const classTotal = bench.page.locator(".editor-instance .codelens-decoration").filter({ hasText: "Σ" });
    await classTotal.first().waitFor(); // lenses have been computed for this workspace
    await bench.openFile("serve.py");
    await bench.line("Llama-2-7b-hf\", dtype").filter({ hasText: "≈ 25.1 GiB fp32" }).waitFor();
    await bench.page.locator(".statusbar-item").filter({ hasText: "memlens weights ≈ 26.0 GiB · 2 models" }).waitFor();
    assert.equal(await bench.page.locator(".editor-instance .codelens-decoration").filter({ hasText: "Profile memory" }).count(), 0);
    await bench.shot("02-static-hints-only");
  });

  it("offers no Profile or Compress command in the palette", async () => {
    const titles = await bench.paletteTitles("memlens:", "memlens: Show memory view");
    assert.ok(titles.includes("memlens: Show traces") && titles.includes("memlens: Restart server"), titles.join(", "));
    for (const worker of ["Estimate memory", "Profile memory", "Compress model"]) {
      assert.ok(!titles.includes(`memlens: ${worker}`), titles.join(", "));
    }
    await bench.shot("03-palette");
    await bench.page.keyboard.press("Escape");
  });
});
