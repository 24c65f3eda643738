// One webview panel per view, reused: created on first show, revealed afterwards. The
// latest data waits until the page says it is ready, so nothing posted early is lost. After
// a window reload VS Code hands the restored panel to this view's serializer: it gets the
// same page back (a fresh nonce) and the page draws the data it kept (media/src/dom.ts).
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
  private readonly serializer: vscode.Disposable;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly spec: PanelSpec,
    private readonly onMessage: (message: FromWebview) => void,
    /** Told the data message a restored page kept (its webview state), if any. */
    private readonly onRestore: (kept: unknown) => void = () => undefined,
  ) {
    this.serializer = vscode.window.registerWebviewPanelSerializer(spec.viewType, {
      deserializeWebviewPanel: async (panel, kept: unknown) => this.restore(panel, kept),
    });
  }

  /** Shows the panel and, when given, replaces the data it draws. */
  show(data?: unknown): void {
    if (data !== undefined) {
      this.latest = data;
    }
    if (this.panel === undefined) {
      const panel = vscode.window.createWebviewPanel(
        this.spec.viewType,
        this.spec.title,
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
        { ...this.webviewOptions(), retainContextWhenHidden: true },
      );
      this.attach(panel);
    } else {
      this.panel.reveal(undefined, true);
    }
    this.flush();
  }

  /** Posts a passing message (not kept for a reload) to the page, when it is open. */
  post(message: unknown): void {
    if (this.panel !== undefined && this.ready) {
      void this.panel.webview.postMessage(message);
    }
  }

  /** Takes over a panel VS Code restored after a reload (a second one replaces the first);
   * `kept` is what its page drew last, which it draws again by itself. */
  restore(panel: vscode.WebviewPanel, kept: unknown): void {
    this.panel?.dispose();
    panel.webview.options = this.webviewOptions();
    this.attach(panel);
    if (kept !== undefined && kept !== null) {
      this.onRestore(kept); // the page draws `kept` itself (media/src/dom.ts)
    }
  }

  private webviewOptions(): vscode.WebviewOptions {
    return { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, "media")] };
  }

  private attach(panel: vscode.WebviewPanel): void {
    this.panel = panel;
    this.ready = false;
    const media = vscode.Uri.joinPath(this.extensionUri, "media");
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
      if (this.panel === panel) {
        this.panel = undefined;
        this.ready = false;
      }
    });
  }

  private flush(): void {
    if (this.panel !== undefined && this.ready && this.latest !== undefined) {
      void this.panel.webview.postMessage(this.latest);
    }
  }

  dispose(): void {
    this.serializer.dispose();
    this.panel?.dispose();
  }
}
