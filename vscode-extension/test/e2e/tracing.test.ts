// End to end with tracing on: the server starts the local collector, a real
// `memlens run` of examples/traced_pipeline.py sends it spans, trace lenses appear above the
// functions that made them, a lens opens the latest trace in the trace view, and a span
// click lands on its line in the editor.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createConnection, createServer } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { REPO_ROOT } from "../../scripts/codeServer";
import { Workbench } from "./workbench";

const PYTHON = join(REPO_ROOT, ".venv", "bin", "python");
const GENERATE_SPAN_LINE = 24; // `with tracer.start_as_current_span("generate"):`
let bench: Workbench;
let port = 0;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  assert.ok(address !== null && typeof address === "object");
  return address.port;
}

function answers(at: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port: at }, () => {
      socket.end();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

function traceLenses(): Promise<string[]> {
  return bench.page
    .locator(".editor-instance .codelens-decoration")
    .allTextContents()
    .then((texts) => texts.map((t) => t.replace(/\u00a0/g, " ")).filter((t) => /traces? · p50 /.test(t)));
}

describe("memlens in code-server (tracing on)", { timeout: 15 * 60_000 }, () => {
  before(async () => {
    port = await freePort();
    bench = await Workbench.start("tracing", {
      settings: { "memlens.tracing.enabled": true, "memlens.collector.port": port },
    });
  });
  after(async () => bench?.stop());

  it("starts the collector and puts trace lenses above the traced functions", async () => {
    await bench.openFile("traced_pipeline.py");
    await bench.until(() => answers(port), `a collector on port ${port}`);
    await promisify(execFile)(
      PYTHON,
      ["-m", "memlens", "run", "--endpoint", `http://127.0.0.1:${port}`, "--", PYTHON, "traced_pipeline.py"],
      { cwd: bench.workspace },
    );
    await bench.until(async () => (await traceLenses()).length === 2, "lenses above retrieve and generate");
    for (const title of await traceLenses()) {
      assert.match(title, /^3 traces · p50 \d+ ms · open$/);
    }
    await bench.shot("01-trace-lenses");
  });

  it("opens the latest trace from a lens and jumps from a span to its line", async () => {
    await bench.page.locator(".editor-instance .codelens-decoration a").filter({ hasText: "3 traces" }).first().click();
    const view = await bench.webview("Trace ");
    await view.locator("h2").filter({ hasText: /^Trace [0-9a-f]{32}$/ }).waitFor();
    assert.deepEqual(await view.locator(".span-row .span-name").allTextContents(), ["ask", "retrieve", "generate"]);
    await bench.shot("02-trace-view");
    await view.locator(".span-row").filter({ hasText: "generate" }).click();
    await bench.page.locator(".statusbar-item").filter({ hasText: `Ln ${GENERATE_SPAN_LINE}, Col 1` }).first().waitFor();
    await bench.page.locator(".tab.active").filter({ hasText: "traced_pipeline.py" }).waitFor();
    await bench.shot("03-span-to-line");
  });
});
