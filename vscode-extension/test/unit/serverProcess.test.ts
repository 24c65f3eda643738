import assert from "node:assert/strict";
import { test } from "node:test";
import { endProcess, startProcess, stderrLevel } from "../../src/serverProcess";

test("the server's log lines keep their level; other stderr (torch warnings) is debug", () => {
  assert.equal(stderrLevel("memlens-lsp: ERROR: the worker crashed"), "error");
  assert.equal(stderrLevel("memlens-lsp: WARNING: worker wrote a line that is not a reply"), "warn");
  assert.equal(stderrLevel("memlens-lsp: INFO: collector on 4318"), "info");
  assert.equal(stderrLevel("memlens-lsp: DEBUG: Cancel notification for unknown message id"), "debug");
  assert.equal(stderrLevel("/x/torchao/quant_api.py:12: UserWarning: Deprecation"), "debug");
  assert.equal(stderrLevel("WARNING: not the server's prefix"), "debug");
});

test("a process that ignores SIGTERM is killed, and stderr arrives line by line", async () => {
  const lines: string[] = [];
  const child = await startProcess(
    process.execPath,
    ["-e", "process.on('SIGTERM', () => {}); console.error('memlens-lsp: WARNING: one\\nnoise'); setInterval(() => {}, 1000);"],
    undefined,
    (level, line) => lines.push(`${level} ${line}`),
  );
  await new Promise((resolve) => setTimeout(resolve, 300));
  await endProcess(child, 200);
  assert.equal(child.signalCode, "SIGKILL");
  assert.deepEqual(lines, ["warn memlens-lsp: WARNING: one", "debug noise"]);
});

test("a process that exits on its own is left to exit", async () => {
  const child = await startProcess(process.execPath, ["-e", "setTimeout(() => {}, 50)"], undefined, () => {});
  await endProcess(child, 5_000);
  assert.equal(child.exitCode, 0);
});

test("an interpreter that does not exist rejects at start", async () => {
  await assert.rejects(startProcess("/nonexistent/python3", [], undefined, () => {}), /ENOENT/);
});
