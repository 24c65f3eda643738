// One webview panel per view, reused: created on first show, revealed afterwards. The
// latest data waits until the page says it is ready, so nothing posted early is lost.
import * as vscode from "vscode";
import { newNonce, pageHtml } from "./html";
import { FromWebview, parseWebviewMessage } from "./messages";

export interface PanelSpec {
  viewType: string;
  title: string;
  /** The bundled script in media/, e.g. `memory.js`. */
  script: string;
}

export class ViewPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private ready = false;
  private latest: unknown;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly spec: PanelSpec,
    private readonly onMessage: (message: FromWebview) => void,
  ) {}

  /** Shows the panel and, when given, replaces the data it draws. */
  show(data?: unknown): void {
    if (data !== undefined) {
      this.latest = data;
    }
    if (this.panel === undefined) {
      this.panel = this.create();
    } else {
      this.panel.reveal(undefined, true);
    }
    this.flush();
  }

  private create(): vscode.WebviewPanel {
    const media = vscode.Uri.joinPath(this.extensionUri, "media");
    const panel = vscode.window.createWebviewPanel(
      this.spec.viewType,
      this.spec.title,
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
      { enableScripts: true, localResourceRoots: [media], retainContextWhenHidden: true },
    );
    const webview = panel.webview;
    webview.html = pageHtml({
      title: this.spec.title,
      cspSource: webview.cspSource,
      nonce: newNonce(),
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(media, this.spec.script)).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(media, "webview.css")).toString(),
    });
    webview.onDidReceiveMessage((raw) => {
      const message = parseWebviewMessage(raw);
      if (message?.type === "ready") {
        this.ready = true;
        this.flush();
      } else if (message !== null) {
        this.onMessage(message);
      }
    });
    panel.onDidDispose(() => {
      this.panel = undefined;
      this.ready = false;
    });
    return panel;
  }

  private flush(): void {
    if (this.panel !== undefined && this.ready && this.latest !== undefined) {
      void this.panel.webview.postMessage(this.latest);
    }
  }

  dispose(): void {
    this.panel?.dispose();
  }
}
