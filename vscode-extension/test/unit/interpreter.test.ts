import assert from "node:assert/strict";
import { test } from "node:test";
import { ExecResult, firstVenv, probeMemlens, resolveInterpreter } from "../../src/interpreter";

test("memlens.python wins over the Python extension and the default", async () => {
  let asked = false;
  const fromExtension = async () => {
    asked = true;
    return "/envs/py/bin/python";
  };
  assert.deepEqual(await resolveInterpreter(" /opt/py/bin/python ", fromExtension), { path: "/opt/py/bin/python", source: "memlens.python" });
  assert.equal(asked, false);
  assert.deepEqual(await resolveInterpreter("", fromExtension), { path: "/envs/py/bin/python", source: "Python extension" });
  assert.deepEqual(await resolveInterpreter(undefined, async () => undefined), { path: "python3", source: "default" });
});

test("a workspace .venv comes after the Python extension and before python3", async () => {
  const venv = () => "/repo/.venv/bin/python";
  assert.deepEqual(await resolveInterpreter("", async () => "/envs/py/bin/python", venv), { path: "/envs/py/bin/python", source: "Python extension" });
  assert.deepEqual(await resolveInterpreter("", async () => undefined, venv), { path: "/repo/.venv/bin/python", source: "workspace .venv" });
  const present = new Set(["/b/.venv/bin/python", "/c/.venv/bin/python"]);
  assert.equal(firstVenv(["/a", "/b", "/c"], (p) => present.has(p)), "/b/.venv/bin/python");
  assert.equal(firstVenv([], () => true), undefined);
});

const exec = (result: ExecResult) => async () => result;

test("probe returns the installed version", async () => {
  const version = await probeMemlens({ path: "python3", source: "default" }, exec({ code: 0, stdout: "0.1.0\n", stderr: "" }));
  assert.equal(version, "0.1.0");
});

test("a missing memlens says how to install it", async () => {
  const missing = exec({ code: 1, stdout: "", stderr: "Traceback...\nModuleNotFoundError: No module named 'memlens'\n" });
  await assert.rejects(probeMemlens({ path: "/envs/a/bin/python", source: "Python extension" }, missing), (error: Error) => {
    assert.match(error.message, /memlens is not installed there/);
    assert.match(error.message, /from Python extension/);
    assert.match(error.message, /\/envs\/a\/bin\/python -m pip install memlens/);
    assert.match(error.message, /memlens\.python/);
    return true;
  });
});

test("an interpreter that cannot start is named with a fix", async () => {
  const absent = exec({ code: null, stdout: "", stderr: "", spawnError: "ENOENT" });
  await assert.rejects(probeMemlens({ path: "/nope/python", source: "memlens.python" }, absent), /cannot run the Python interpreter "\/nope\/python" \(from memlens.python\): ENOENT.*Fix: set "memlens.python"/);
});

test("another import failure shows its last line", async () => {
  const broken = exec({ code: 1, stdout: "", stderr: "Traceback\nImportError: cannot import name 'x' from 'pygls'\n" });
  await assert.rejects(probeMemlens({ path: "python3", source: "default" }, broken), /ImportError: cannot import name 'x' from 'pygls'\. Fix/);
});

test("really probes a Python (python3 without memlens, or the repository's venv with it)", async () => {
  const { execFile } = await import("node:child_process");
  const real = (file: string, args: string[]) =>
    new Promise<ExecResult>((resolve) =>
      execFile(file, args, (error, stdout, stderr) => {
        const code = error && "code" in error ? error.code : 0;
        resolve(typeof code === "string" ? { code: null, stdout, stderr, spawnError: code } : { code: error ? (code ?? 1) : 0, stdout, stderr });
      }),
    );
  await assert.rejects(probeMemlens({ path: "/definitely/not/python", source: "memlens.python" }, real), /ENOENT/);
  const venv = `${__dirname}/../../../../.venv/bin/python`;
  assert.match(await probeMemlens({ path: venv, source: "memlens.python" }, real), /^\d+\.\d+/);
});
