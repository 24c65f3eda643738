// Which Python runs the language server, and whether memlens is importable there.
import { join } from "node:path";

/** Where the interpreter came from, for the log and the error messages. */
export type InterpreterSource = "memlens.python" | "Python extension" | "workspace .venv" | "default";

export interface Interpreter {
  path: string;
  source: InterpreterSource;
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Set when the file could not be started at all (ENOENT, EACCES). */
  spawnError?: string;
}

export type Exec = (file: string, args: string[]) => Promise<ExecResult>;

/**
 * `memlens.python`, else the Python extension's active environment, else a `.venv` in a
 * trusted workspace folder (`workspaceVenv`), else `python3`.
 */
export async function resolveInterpreter(
  configured: string | undefined,
  pythonExtension: () => Promise<string | undefined>,
  workspaceVenv: () => string | undefined = () => undefined,
): Promise<Interpreter> {
  const setting = configured?.trim();
  if (setting) {
    return { path: setting, source: "memlens.python" };
  }
  const active = await pythonExtension();
  if (active) {
    return { path: active, source: "Python extension" };
  }
  const venv = workspaceVenv();
  if (venv) {
    return { path: venv, source: "workspace .venv" };
  }
  return { path: "python3", source: "default" };
}

/** The first `<folder>/.venv/bin/python` that exists among `folders`. */
export function firstVenv(folders: readonly string[], exists: (path: string) => boolean): string | undefined {
  return folders.map((folder) => join(folder, ".venv", "bin", "python")).find(exists);
}

const PROBE = "import memlens, memlens.lsp_server; print(memlens.__version__)";

/** The installed memlens version, or an Error whose message says how to fix it. */
export async function probeMemlens(interpreter: Interpreter, exec: Exec): Promise<string> {
  const { path, source } = interpreter;
  const result = await exec(path, ["-c", PROBE]);
  const from = source === "default" ? "" : ` (from ${source})`;
  if (result.spawnError !== undefined) {
    throw new Error(
      `memlens: cannot run the Python interpreter "${path}"${from}: ${result.spawnError}. ` +
        `Fix: set "memlens.python" to the full path of a Python that has memlens installed.`,
    );
  }
  if (result.code !== 0) {
    const missing = /No module named '?memlens/.test(result.stderr);
    const reason = missing ? "memlens is not installed there" : lastLine(result.stderr);
    throw new Error(
      `memlens: the language server cannot start with "${path}"${from}: ${reason}. ` +
        `Fix: run "${path} -m pip install memlens" (or "pip install -e ." in a memlens ` +
        `checkout), or set "memlens.python" to an interpreter that has it.`,
    );
  }
  return result.stdout.trim();
}

function lastLine(text: string): string {
  const lines = text.trim().split(/\r?\n/);
  return lines[lines.length - 1] || "it exited with an error";
}
