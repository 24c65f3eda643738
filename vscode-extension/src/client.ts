// The language client: finds the interpreter, checks memlens is there, starts
// `python -m memlens.lsp_server` over stdio, and restarts it on demand.
import { execFile } from "node:child_process";
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
} from "vscode-languageclient/node";
import { Exec, Interpreter, probeMemlens, resolveInterpreter } from "./interpreter";
import { loadLineNear } from "./lensTarget";
import { serverSettings } from "./settings";
import { DocumentSummary, ServerState } from "./status";

export const REPORT_NOTIFICATION = "memlens/memoryReport";
export const TRACE_NOTIFICATION = "memlens/traceReport";
export const SUMMARY_REQUEST = "memlens/documentSummary";
/** Server commands that act on a model load: `[uri, line]` arguments. */
const LOAD_COMMANDS = new Set(["memlens.estimate", "memlens.profile", "memlens.compress"]);

export interface ClientEvents {
  state(state: ServerState): void;
  memoryReport(report: unknown): void;
  traceReport(report: unknown): void;
}

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
  private interpreter: Interpreter | undefined;

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

  async start(): Promise<void> {
    this.events.state("starting");
    try {
      const configured = vscode.workspace.getConfiguration("memlens").get<string>("python");
      // In an untrusted workspace the interpreter setting is restricted: VS Code hands us
      // the user-level value only, so a cloned repository cannot choose what runs.
      this.interpreter = await resolveInterpreter(configured, pythonExtensionInterpreter);
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
    // No `transport`: with TransportKind.stdio the client would append `--stdio`, which
    // the server does not take; a plain executable talks stdio anyway.
    const serverOptions: ServerOptions = {
      command: this.interpreter.path,
      args: ["-m", "memlens.lsp_server"],
      options: { cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath },
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
          if (LOAD_COMMANDS.has(command) && args.length === 0) {
            const filled = await loadArguments(command);
            return filled === undefined ? undefined : next(command, filled);
          }
          return next(command, args);
        },
      },
    };
    const client = new LanguageClient("memlens", "memlens", serverOptions, clientOptions);
    client.onDidChangeState(({ newState }) =>
      this.events.state(newState === State.Running ? "running" : newState === State.Starting ? "starting" : "stopped"),
    );
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

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client !== undefined && client.state !== State.Stopped) {
      await client.stop();
    }
    this.events.state("stopped");
  }

  async restart(): Promise<void> {
    this.output.info("memlens: restarting the language server");
    await this.stop();
    await this.start();
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

  dispose(): void {
    void this.stop();
  }
}
