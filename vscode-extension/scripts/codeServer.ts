// Runs code-server (VS Code in the browser) with the built .vsix on a copy of examples/.
// Shared by the end-to-end test and `make demo`.
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";

/** vscode-extension/: the nearest folder above this (bundled) file with the package.json. */
function extensionRoot(): string {
  let folder = __dirname;
  while (!existsSync(join(folder, "package.json")) || !existsSync(join(folder, "src", "extension.ts"))) {
    if (dirname(folder) === folder) {
      throw new Error(`no vscode-extension folder above ${__dirname}`);
    }
    folder = dirname(folder);
  }
  return folder;
}

export const EXTENSION_ROOT = extensionRoot();

export const REPO_ROOT = join(EXTENSION_ROOT, "..");
const TOOLS = join(EXTENSION_ROOT, ".tools");
const NODE_BIN = join(TOOLS, "node24", "node_modules", "node", "bin");
const CODE_SERVER = join(TOOLS, "code-server", "node_modules", ".bin", "code-server");

export interface CodeServerOptions {
  /** Scratch folder for code-server's profile and extensions (wiped first). */
  home: string;
  /** The folder code-server opens. */
  workspace: string;
  /** User settings on top of the defaults below. */
  settings?: Record<string, unknown>;
  host?: string;
  port?: number;
  /** Keep VS Code's Workspace Trust on (the folder starts untrusted); default off. */
  workspaceTrust?: boolean;
  env?: Record<string, string>;
}

export function vsixPath(): string {
  const { version } = JSON.parse(readFileSync(join(EXTENSION_ROOT, "package.json"), "utf8"));
  return join(EXTENSION_ROOT, "build", `memlens-${version}.vsix`);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

export class CodeServer {
  private constructor(
    private readonly process: ChildProcess,
    readonly url: string,
    readonly log: () => string,
  ) {}

  static async start(options: CodeServerOptions): Promise<CodeServer> {
    const env = { ...process.env, PATH: `${NODE_BIN}:${process.env.PATH}`, ...options.env };
    rmSync(options.home, { recursive: true, force: true });
    const userData = join(options.home, "user-data");
    const extensions = join(options.home, "extensions");
    mkdirSync(join(userData, "User"), { recursive: true });
    writeFileSync(
      join(userData, "User", "settings.json"),
      JSON.stringify(
        {
          "security.workspace.trust.enabled": options.workspaceTrust === true,
          "workbench.startupEditor": "none",
          "workbench.secondarySideBar.defaultVisibility": "hidden",
          "workbench.tips.enabled": false,
          "chat.disableAIFeatures": true,
          "telemetry.telemetryLevel": "off",
          "update.mode": "none",
          "extensions.autoCheckUpdates": false,
          "editor.minimap.enabled": false,
          "git.openRepositoryInParentFolders": "never",
          "memlens.python": join(REPO_ROOT, ".venv", "bin", "python"),
          ...options.settings,
        },
        null,
        1,
      ),
    );
    const common = ["--user-data-dir", userData, "--extensions-dir", extensions];
    try {
      execFileSync(CODE_SERVER, ["--install-extension", vsixPath(), "--force", ...common], { env, stdio: "pipe" });
    } catch (error) {
      throw new Error(`code-server could not install ${vsixPath()} (run "make extension-e2e" from the repository root, which builds and installs what it needs): ${String(error)}`);
    }
    const port = options.port ?? (await freePort());
    const host = options.host ?? "127.0.0.1";
    const child = spawn(
      CODE_SERVER,
      [
        "--bind-addr", `${host}:${port}`,
        "--auth", "none",
        "--disable-telemetry",
        "--disable-update-check",
        ...(options.workspaceTrust ? [] : ["--disable-workspace-trust"]),
        ...common,
        options.workspace,
      ],
      { env, detached: true, stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`code-server did not start in 120 s:\n${output}`)), 120_000);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        const match = output.match(/HTTP server listening on (http:\/\/\S+)/);
        if (match) {
          clearTimeout(timer);
          resolve(match[1].replace(/\/$/, ""));
        }
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      child.on("exit", (code) => reject(new Error(`code-server exited with ${code}:\n${output}`)));
    });
    return new CodeServer(child, url, () => output);
  }

  /** The URL that opens `folder` in the browser. */
  folderUrl(folder: string): string {
    return `${this.url}/?folder=${encodeURIComponent(folder)}`;
  }

  stop(): void {
    if (this.process.pid !== undefined && this.process.exitCode === null) {
      process.kill(-this.process.pid, "SIGTERM"); // its own process group: server and extension hosts
    }
  }
}

/** A fresh copy of examples/ (the tests must not write into the repository's files). */
export function copyExamples(target: string): string {
  rmSync(target, { recursive: true, force: true });
  cpSync(join(REPO_ROOT, "examples"), target, { recursive: true });
  // a project's own environment, as users have one: the server starts from it even when
  // code-server hands the extension host no user settings (seen after a window reload)
  symlinkSync(join(REPO_ROOT, ".venv"), join(target, ".venv"));
  return target;
}
