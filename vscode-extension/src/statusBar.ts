// The status-bar item: server state and the active Python file's total estimate.
import * as vscode from "vscode";
import { DocumentSummary, ServerState, statusView } from "./status";

const REFRESH_DELAY_MS = 400;

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem("memlens.status", vscode.StatusBarAlignment.Right, 100);
  private readonly subscriptions: vscode.Disposable[] = [];
  private state: ServerState = "starting";
  private timer: NodeJS.Timeout | undefined;
  private asked = 0;
  /** The latest summary of the active file. */
  summary: DocumentSummary | null = null;

  constructor(private readonly fetch: (document: vscode.TextDocument) => Promise<DocumentSummary | null>) {
    this.item.name = "memlens";
    this.item.command = "memlens.showFileEstimates";
    this.subscriptions.push(
      vscode.window.onDidChangeActiveTextEditor(() => this.refresh()),
      vscode.workspace.onDidChangeTextDocument((e) => {
        if (e.document === vscode.window.activeTextEditor?.document) {
          this.refresh();
        }
      }),
    );
    this.render();
    this.item.show();
  }

  setState(state: ServerState): void {
    this.state = state;
    this.render();
    if (state === "running") {
      this.refresh();
    }
  }

  /** Asks the server again, once typing pauses. */
  refresh(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(async () => {
      const ask = ++this.asked;
      const document = vscode.window.activeTextEditor?.document;
      const summary = document ? await this.fetch(document) : null;
      if (ask === this.asked) {
        // an answer to an older question (another file, an earlier version) is dropped
        this.summary = summary;
        this.render();
      }
    }, REFRESH_DELAY_MS);
  }

  private render(): void {
    const view = statusView(this.state, vscode.workspace.isTrusted, this.summary);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor = view.warning ? new vscode.ThemeColor("statusBarItem.warningBackground") : undefined;
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.subscriptions.forEach((s) => s.dispose());
    this.item.dispose();
  }
}
