// End to end: memlens.python names an interpreter without memlens (Debian's python3). The
// user gets the reason and the fix, and the status bar says the server failed.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Workbench } from "./workbench";

const PYTHON = "/usr/bin/python3";
let bench: Workbench;

describe("memlens in code-server (memlens missing from the interpreter)", { timeout: 15 * 60_000 }, () => {
  before(async () => {
    bench = await Workbench.start("missing-memlens", { settings: { "memlens.python": PYTHON } });
  });
  after(async () => bench?.stop());

  it("says memlens is not installed there and how to fix it", async () => {
    await bench.openFile("serve.py"); // activates the extension
    const toast = bench.page.locator(".notifications-toasts .notification-toast").filter({ hasText: "memlens is not installed there" });
    await toast.first().waitFor();
    const text = (await toast.first().textContent())!.replace(/\u00a0/g, " ");
    assert.match(text, /cannot start with "\/usr\/bin\/python3" \(from memlens\.python\)/);
    assert.match(text, /Fix: run "\/usr\/bin\/python3 -m pip install memlens"/);
    assert.match(text, /Open Settings/);
    await bench.page.locator(".statusbar-item").filter({ hasText: "memlens" }).locator(".codicon-error").first().waitFor();
    // activation finished although nobody answered the notification
    await bench.page.locator(".statusbar-item").filter({ hasText: "Activating Extensions" }).waitFor({ state: "detached" });
    await bench.shot("01-memlens-missing");
  });
});
