// The memory and trace views, and what their messages do in the editor.
import * as vscode from "vscode";
import { FromWebview } from "./webviews/messages";
import { ReportError, isRecord } from "./webviews/model/format";
import { jaegerLinks, parseTraceReport } from "./webviews/model/trace";
import { ViewPanel } from "./webviews/panel";

/** The server command that answers `[{"trace_id"?}]` with a `memlens/traceReport`. */
export const TRACES_COMMAND = "memlens.traces";

export class Views implements vscode.Disposable {
  readonly memory: ViewPanel;
  readonly traces: ViewPanel;
  private memoryView: unknown;
  /** The Jaeger pages the trace report shown last links to, by trace id. */
  private jaegerLinks = new Map<string, string>();

  constructor(
    extensionUri: vscode.Uri,
    private readonly requestTrace: (traceId: string) => Promise<void>,
  ) {
    const handle = (m: FromWebview) => void this.handle(m);
    this.memory = new ViewPanel(extensionUri, { viewType: "memlens.memory", title: "memlens: Memory", script: "memory.js" }, handle, (kept) => {
      if (isRecord(kept) && kept.type === "report") {
        this.memoryView = kept.view;
      }
    });
    this.traces = new ViewPanel(extensionUri, { viewType: "memlens.traces", title: "memlens: Traces", script: "trace.js" }, handle, (kept) => {
      if (isRecord(kept) && kept.type === "traces") {
        this.rememberLinks(kept.report);
      }
    });
  }

  /** Shows a `memlens/memoryReport` payload (the server builds the whole view). */
  showMemory(view?: unknown): void {
    if (view !== undefined) {
      this.memoryView = view;
    }
    this.memory.show(this.memoryView === undefined ? undefined : { type: "report", view: this.memoryView });
  }

  /** Marks the memory view as updating (`title` of the run), or not any more (null). */
  memoryUpdating(title: string | null): void {
    this.memory.post({ type: "updating", text: title });
  }

  /** Shows a `memlens/traceReport` (a malformed one too: the view names its bad field). */
  showTraces(report?: unknown): void {
    if (report === undefined) {
      this.traces.show();
      return;
    }
    this.rememberLinks(report);
    this.traces.show({ type: "traces", report });
  }

  /** Keeps the Jaeger links of the report the trace view draws ("Open in Jaeger" opens only these). */
  private rememberLinks(report: unknown): void {
    try {
      this.jaegerLinks = jaegerLinks(parseTraceReport(report));
    } catch (error) {
      if (!(error instanceof ReportError)) {
        throw error;
      }
      this.jaegerLinks = new Map();
    }
  }

  /** `memlens: Open trace`: a trace id (lenses, the trace list) or a trace report file. */
  async openTrace(traceId?: unknown): Promise<void> {
    const id = typeof traceId === "object" && traceId !== null ? (traceId as { trace_id?: unknown }).trace_id : traceId;
    if (typeof id === "string" && /^[0-9a-f]{32}$/.test(id)) {
      await this.requestTrace(id);
      return;
    }
    const [file] = (await vscode.window.showOpenDialog({ filters: { "Trace report": ["json"] }, title: "Open a memlens trace report" })) ?? [];
    if (file === undefined) {
      return;
    }
    try {
      this.showTraces(JSON.parse(new TextDecoder().decode(await vscode.workspace.fs.readFile(file))));
    } catch (error) {
      void vscode.window.showErrorMessage(`memlens: ${file.fsPath} is not a trace report: ${String(error)}`);
    }
  }

  private async handle(message: FromWebview): Promise<void> {
    switch (message.type) {
      case "openLocation":
        return this.openLocation(message.path, message.line);
      case "openJaeger": {
        const url = this.jaegerLinks.get(message.traceId);
        if (url === undefined) {
          void vscode.window.showWarningMessage('memlens: set "memlens.jaeger.url" to open traces in Jaeger.');
          return;
        }
        await vscode.env.openExternal(vscode.Uri.parse(url));
        return;
      }
      case "openTrace":
        return this.openTrace(message.traceId);
      case "revealPath":
        return this.revealPath(message.path);
      case "ready":
        return;
    }
  }

  /** The compressed checkpoint's folder: shown in the Explorer when it is in the workspace,
   * else in the system's file manager, else its path copied. */
  private async revealPath(path: string): Promise<void> {
    const uri = vscode.Uri.file(path);
    try {
      await vscode.workspace.fs.stat(uri);
    } catch {
      void vscode.window.showWarningMessage(`memlens: ${path} does not exist (any more).`);
      return;
    }
    if (vscode.workspace.getWorkspaceFolder(uri) !== undefined) {
      await vscode.commands.executeCommand("revealInExplorer", uri);
      return;
    }
    await vscode.env.clipboard.writeText(path);
    const choice = await vscode.window.showInformationMessage(`memlens: copied ${path}`, "Open in New Window", "Reveal in File Manager");
    if (choice === "Open in New Window") {
      await vscode.commands.executeCommand("vscode.openFolder", uri, { forceNewWindow: true });
    } else if (choice === "Reveal in File Manager") {
      await vscode.commands.executeCommand("revealFileInOS", uri);
    }
  }

  /** Opens a span's source line; relative paths are relative to the first workspace folder. */
  private async openLocation(path: string, line: number): Promise<void> {
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    const absolute = path.startsWith("/") || /^[A-Za-z]:[\\/]/.test(path);
    const uri = absolute || folder === undefined ? vscode.Uri.file(path) : vscode.Uri.joinPath(folder, path);
    try {
      await vscode.workspace.fs.stat(uri);
    } catch {
      void vscode.window.showWarningMessage(`memlens: the span's source file ${uri.fsPath} does not exist here.`);
      return;
    }
    const at = new vscode.Position(line - 1, 0);
    await vscode.window.showTextDocument(uri, { selection: new vscode.Range(at, at), viewColumn: vscode.ViewColumn.One });
  }

  dispose(): void {
    this.memory.dispose();
    this.traces.dispose();
  }
}
