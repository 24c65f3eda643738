// activate/deactivate: wire the client, the status bar, the views and the commands.
import * as vscode from "vscode";
import { MemlensClient } from "./client";
import { StatusBar } from "./statusBar";
import { TRACES_COMMAND, Views } from "./views";

let client: MemlensClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel("memlens", { log: true });
  let views: Views | undefined;
  let status: StatusBar | undefined;
  const memlens = new MemlensClient(output, {
    state: (state) => status?.setState(state),
    memoryReport: (report) => views?.showMemory(report),
    traceReport: (report) => views?.showTraces(report),
    updating: (title) => views?.memoryUpdating(title),
  });
  client = memlens;
  status = new StatusBar((document) => memlens.summary(document));
  views = new Views(context.extensionUri, async (traceId) => {
    await vscode.commands.executeCommand(TRACES_COMMAND, { trace_id: traceId });
  });
  context.subscriptions.push(
    output,
    memlens,
    status,
    views,
    vscode.commands.registerCommand("memlens.restartServer", () => memlens.restart()),
    vscode.commands.registerCommand("memlens.showMemoryView", () => views?.showMemory()),
    // the status bar's click: this file's estimates (the last report when it has none)
    vscode.commands.registerCommand("memlens.showFileEstimates", async () => {
      const document = vscode.window.activeTextEditor?.document;
      const view = document ? await memlens.documentView(document) : null;
      views?.showMemory(view ?? undefined);
    }),
    vscode.commands.registerCommand("memlens.showTraces", async () => {
      views?.showTraces();
      await vscode.commands.executeCommand(TRACES_COMMAND, {});
    }),
    vscode.commands.registerCommand("memlens.openTrace", (traceId?: unknown) => views?.openTrace(traceId)),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (e.affectsConfiguration("memlens.python")) {
        await memlens.restart();
      } else if (e.affectsConfiguration("memlens")) {
        await memlens.settingsChanged();
        status?.refresh();
      }
    }),
    // Trust is read once at server start: granting it restarts the server with the worker on.
    vscode.workspace.onDidGrantWorkspaceTrust(() => memlens.restart()),
  );
  await memlens.start();
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}
