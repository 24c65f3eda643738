// The language client: finds the interpreter, checks memlens is there, starts
// `python -m memlens.lsp_server` over stdio, and restarts it on demand (a restart always
// ends with a running server: a server that does not stop in time is killed).
import { ChildProcess, execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { randomUUID } from "node:crypto";
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
  WorkDoneProgress,
} from "vscode-languageclient/node";
import { CompressOptions, compressPickItems } from "./compressPick";
import { Exec, Interpreter, firstVenv, probeMemlens, resolveInterpreter } from "./interpreter";
import { loadLineNear } from "./lensTarget";
import { endProcess, startProcess } from "./serverProcess";
import { serverSettings } from "./settings";
import { DocumentSummary, ServerState } from "./status";

export const REPORT_NOTIFICATION = "memlens/memoryReport";
export const TRACE_NOTIFICATION = "memlens/traceReport";
export const SUMMARY_REQUEST = "memlens/documentSummary";
export const DOCUMENT_VIEW_REQUEST = "memlens/documentView";
export const COMPRESS_OPTIONS_REQUEST = "memlens/compressOptions";
/** Server commands that act on a model load: `[uri, line]` arguments. */
const LOAD_COMMANDS = new Set(["memlens.estimate", "memlens.profile", "memlens.compress"]);
/** How long the server gets to answer shutdown/exit before its process is ended. */
const STOP_TIMEOUT_MS = 3_000;
/** How long the process then gets after the exit notification, and after SIGTERM. */
const EXIT_GRACE_MS = 2_000;

export interface ClientEvents {
  state(state: ServerState): void;
  memoryReport(report: unknown): void;
  traceReport(report: unknown): void;
  /** A command that will replace the memory view started (its title), or ended (null). */
  updating(title: string | null): void;
}

const RUNNING: Record<string, string> = {
  "memlens.estimate": "Estimating",
  "memlens.profile": "Profiling",
  "memlens.compress": "Compressing",
};

const exec: Exec = (file, args) =>
  new Promise((resolve) => {
    execFile(file, args, { timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error && "code" in error ? error.code : 0;
      if (typeof code === "string") {
        resolve({ code: null, stdout, stderr, spawnError: `${code} (${error?.message})` });
      } else {
        resolve({ code: error ? (code ?? 1) : 0, stdout, stderr });
      }
    });
  });

interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): { path: string };
    resolveEnvironment(env: { path: string }): Promise<{ executable: { uri?: vscode.Uri } } | undefined>;
  };
}

/** The Python extension's active interpreter, when that extension is installed. */
async function pythonExtensionInterpreter(): Promise<string | undefined> {
  const extension = vscode.extensions.getExtension<PythonExtensionApi>("ms-python.python");
  if (extension === undefined) {
    return undefined;
  }
  const api = extension.isActive ? extension.exports : await extension.activate();
  const resource = vscode.workspace.workspaceFolders?.[0]?.uri;
  const active = api?.environments?.getActiveEnvironmentPath(resource);
  const resolved = active ? await api?.environments?.resolveEnvironment(active) : undefined;
  return resolved?.executable.uri?.fsPath;
}

/** The command's `[uri, line]` from the active editor when the palette gave none. */
async function loadArguments(command: string): Promise<unknown[] | undefined> {
  const editor = vscode.window.activeTextEditor;
  if (editor === undefined || editor.document.languageId !== "python") {
    void vscode.window.showWarningMessage(`memlens: open a Python file with a model load to run ${command}.`);
    return undefined;
  }
  const lenses = (await vscode.commands.executeCommand<vscode.CodeLens[]>(
    "vscode.executeCodeLensProvider",
    editor.document.uri,
  )) ?? [];
  const line = loadLineNear(
    lenses.map((l) => ({ line: l.range.start.line, command: l.command?.command })),
    editor.selection.active.line,
  );
  if (line === undefined) {
    void vscode.window.showWarningMessage(
      "memlens: no model load with a static id in this file (e.g. from_pretrained(\"meta-llama/Llama-2-7b-hf\")).",
    );
    return undefined;
  }
  return [editor.document.uri.toString(), line];
}

export class MemlensClient implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private process: ChildProcess | undefined;
  private interpreter: Interpreter | undefined;
  /** Starts, stops and restarts run one after another, never interleaved. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly output: vscode.LogOutputChannel,
    private readonly events: ClientEvents,
  ) {}

  get running(): boolean {
    return this.client?.state === State.Running;
  }

  private settings() {
    const config = vscode.workspace.getConfiguration("memlens");
    return serverSettings((key) => config.get(key), vscode.workspace.isTrusted);
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    const next = this.queue.then(step, step);
    this.queue = next.catch(() => undefined);
    return next;
  }

  start(): Promise<void> {
    return this.enqueue(() => this.startNow());
  }

  stop(): Promise<void> {
    return this.enqueue(() => this.stopNow());
  }

  /** Stops the server (killing it if it does not stop in time), then starts it again. */
  restart(): Promise<void> {
    return this.enqueue(async () => {
      this.output.info("memlens: restarting the language server");
      await this.stopNow();
      await this.startNow();
    });
  }

  private async startNow(): Promise<void> {
    this.events.state("starting");
    try {
      const configured = vscode.workspace.getConfiguration("memlens").get<string>("python");
      // In an untrusted workspace the interpreter setting is restricted: VS Code hands us
      // the user-level value only, so a cloned repository cannot choose what runs.
      // a repository's own .venv runs only where the workspace is trusted, for the same reason
      const folders = vscode.workspace.isTrusted ? (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath) : [];
      this.interpreter = await resolveInterpreter(configured, pythonExtensionInterpreter, () => firstVenv(folders, existsSync));
      const version = await probeMemlens(this.interpreter, exec);
      this.output.info(`memlens ${version} with ${this.interpreter.path} (from ${this.interpreter.source})`);
    } catch (error) {
      this.events.state("failed");
      const message = error instanceof Error ? error.message : String(error);
      this.output.error(message);
      // Not awaited: activation must not wait for the user to answer the notification.
      void vscode.window.showErrorMessage(message, "Open Settings", "Show Log").then((choice) => {
        if (choice === "Open Settings") {
          void vscode.commands.executeCommand("workbench.action.openSettings", "memlens.python");
        } else if (choice === "Show Log") {
          this.output.show();
        }
      });
      return;
    }
    // The extension starts the process itself (stdio, no `--stdio` flag: the server takes
    // none) so that a stop can always end it.
    const python = this.interpreter.path;
    const serverOptions: ServerOptions = async () => {
      if (this.client !== client) {
        // a replaced client's automatic restart after a crash starts nothing
        throw new Error("memlens: this language client was replaced");
      }
      const child = await startProcess(
        python,
        ["-m", "memlens.lsp_server"],
        vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
        (level, line) => this.output[level](line),
      );
      this.process = child;
      return { reader: child.stdout!, writer: child.stdin! };
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [
        { scheme: "file", language: "python" },
        { scheme: "untitled", language: "python" },
      ],
      outputChannel: this.output,
      initializationOptions: { memlens: this.settings() },
      middleware: {
        executeCommand: async (command, args, next) => {
          if (!LOAD_COMMANDS.has(command)) {
            return next(command, args);
          }
          const filled = args.length === 0 ? await loadArguments(command) : args;
          if (filled === undefined) {
            return undefined;
          }
          if (command === "memlens.compress" && filled.length === 2) {
            const choice = await this.pickCompression(filled[0], filled[1]);
            if (choice === undefined) {
              return undefined;
            }
            filled.push(choice);
          }
          return this.runWithProgress(command, filled);
        },
      },
    };
    const client = new LanguageClient("memlens", "memlens", serverOptions, clientOptions);
    client.onDidChangeState(({ newState }) => {
      if (this.client === client) {
        // a client being replaced reports nothing: its "stopped" would hide the new one
        this.events.state(newState === State.Running ? "running" : newState === State.Starting ? "starting" : "stopped");
      }
    });
    client.onNotification(REPORT_NOTIFICATION, (params: unknown) => this.events.memoryReport(params));
    client.onNotification(TRACE_NOTIFICATION, (params: unknown) => this.events.traceReport(params));
    this.client = client;
    try {
      await client.start();
    } catch (error) {
      this.events.state("failed");
      this.output.error(`memlens: the language server failed to start: ${String(error)}`);
      void vscode.window.showErrorMessage("memlens: the language server failed to start; see the memlens output.", "Show Log").then((c) => c && this.output.show());
    }
  }

  private async stopNow(): Promise<void> {
    const client = this.client;
    const child = this.process;
    this.client = undefined;
    this.process = undefined;
    if (client !== undefined && client.state === State.Running) {
      try {
        await client.stop(STOP_TIMEOUT_MS);
      } catch (error) {
        this.output.warn(`memlens: the language server did not stop in time (${String(error)}); ending its process`);
      }
    }
    if (child !== undefined) {
      await endProcess(child, EXIT_GRACE_MS);
    }
    this.events.state("stopped");
  }

  /** Sends the current settings (trust can only be lowered this way, so trust changes restart). */
  async settingsChanged(): Promise<void> {
    if (this.client && this.running) {
      await this.client.sendNotification(DidChangeConfigurationNotification.type, {
        settings: { memlens: this.settings() },
      });
    }
  }

  async summary(document: vscode.TextDocument): Promise<DocumentSummary | null> {
    if (!this.client || !this.running || document.languageId !== "python") {
      return null;
    }
    try {
      return await this.client.sendRequest<DocumentSummary>(SUMMARY_REQUEST, { uri: document.uri.toString() });
    } catch (error) {
      this.output.debug(`documentSummary: ${String(error)}`);
      return null;
    }
  }

  /** The Compress… quick pick: the schemes the server offers for the load on `line`. */
  private async pickCompression(uri: unknown, line: unknown): Promise<unknown> {
    const client = this.client;
    if (client === undefined) {
      return undefined;
    }
    let options: CompressOptions;
    try {
      options = await client.sendRequest<CompressOptions>(COMPRESS_OPTIONS_REQUEST, { uri, line });
    } catch (error) {
      void vscode.window.showErrorMessage(`memlens: cannot compress this load: ${error instanceof Error ? error.message : String(error)}`);
      return undefined;
    }
    const picked = await vscode.window.showQuickPick(compressPickItems(options), {
      title: `Compress ${options.model} (weights now ${options.before_text})`,
      placeHolder: "Scheme · estimated weights after compression",
      matchOnDetail: true,
    });
    return picked?.choice;
  }

  /**
   * Runs a worker command with its progress in a cancellable notification (the server
   * reports on the token sent with the request); the memory view is marked as updating
   * meanwhile. Cancelling sends `$/cancelRequest`, which stops the worker's task.
   */
  private async runWithProgress(command: string, args: unknown[]): Promise<unknown> {
    const client = this.client;
    if (client === undefined) {
      return undefined;
    }
    const token = randomUUID();
    const title = `memlens: ${RUNNING[command]}`;
    this.events.updating(`${RUNNING[command]}…`);
    try {
      return await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title, cancellable: true },
        async (progress, cancel) => {
          let done = 0;
          const listener = client.onProgress(WorkDoneProgress.type, token, (value) => {
            if (value.kind === "end") {
              return;
            }
            const percentage = value.percentage ?? done;
            progress.report({ message: value.message, increment: Math.max(0, percentage - done) });
            done = Math.max(done, percentage);
          });
          try {
            return await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args, workDoneToken: token }, cancel);
          } finally {
            listener.dispose();
          }
        },
      );
    } catch (error) {
      // the server already said why (window/showMessage); a cancel needs no message
      this.output.debug(`${command}: ${String(error)}`);
      return undefined;
    } finally {
      this.events.updating(null);
    }
  }

  /** The memory view of the document's estimated loads (null: none, or no server). */
  async documentView(document: vscode.TextDocument): Promise<unknown> {
    if (!this.client || !this.running || document.languageId !== "python") {
      return null;
    }
    try {
      return await this.client.sendRequest<unknown>(DOCUMENT_VIEW_REQUEST, { uri: document.uri.toString() });
    } catch (error) {
      this.output.debug(`documentView: ${String(error)}`);
      return null;
    }
  }

  dispose(): void {
    void this.stop();
  }
}
