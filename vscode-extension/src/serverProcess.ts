// The language server's process, owned by the extension: started over stdio, its stderr
// routed to the log by level, and ended for sure (SIGTERM, then SIGKILL) on stop.
import { ChildProcess, spawn } from "node:child_process";

export type LogLevel = "error" | "warn" | "info" | "debug";

const SERVER_LINE = /^memlens-lsp: (CRITICAL|ERROR|WARNING|INFO|DEBUG): /;
const LEVELS: Record<string, LogLevel> = {
  CRITICAL: "error",
  ERROR: "error",
  WARNING: "warn",
  INFO: "info",
  DEBUG: "debug",
};

/**
 * The log level of one stderr line: the server's own log lines keep their level; anything
 * else (library warnings, the worker's torch noise) is debug.
 */
export function stderrLevel(line: string): LogLevel {
  const match = SERVER_LINE.exec(line);
  return match ? LEVELS[match[1]] : "debug";
}

/** Starts `command args` with piped stdio; resolves once it runs, rejects if it cannot start. */
export function startProcess(
  command: string,
  args: string[],
  cwd: string | undefined,
  log: (level: LogLevel, line: string) => void,
): Promise<ChildProcess> {
  const child = spawn(command, args, { cwd, stdio: "pipe" });
  let rest = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop() ?? "";
    for (const line of lines.filter((l) => l.trim() !== "")) {
      log(stderrLevel(line), line);
    }
  });
  return new Promise((resolve, reject) => {
    child.once("spawn", () => resolve(child));
    child.once("error", reject);
  });
}

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve(true);
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Ends `child`: waits `graceMs` for it to exit on its own (after the LSP exit
 * notification), then SIGTERM, then SIGKILL. Resolves once it has exited.
 */
export async function endProcess(child: ChildProcess, graceMs: number): Promise<void> {
  if (await exited(child, graceMs)) {
    return;
  }
  child.kill("SIGTERM");
  if (await exited(child, graceMs)) {
    return;
  }
  child.kill("SIGKILL");
  await exited(child, 10 * graceMs);
}
