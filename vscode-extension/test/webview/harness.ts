// Serves a webview's real HTML (pageHtml, its CSP and nonce) and media/ over HTTP on
// 127.0.0.1 and opens it in Debian's Chromium through Playwright. `acquireVsCodeApi` is
// stubbed to record posted messages and keep its state (setState) across page reloads; `window.__xss` records any payload that ran.
import { readFile } from "node:fs/promises";
import { AddressInfo } from "node:net";
import { createServer, Server } from "node:http";
import { join } from "node:path";
import { Browser, Page, chromium } from "playwright-core";
import { newNonce, pageHtml } from "../../src/webviews/html";
import { EXTENSION_ROOT } from "../fixtures";

export const CHROMIUM = process.env.MEMLENS_CHROMIUM ?? "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync",
  "--disable-quic",
];

const TYPES: Record<string, string> = { js: "text/javascript", css: "text/css" };

export class Harness {
  private constructor(
    private readonly server: Server,
    readonly browser: Browser,
    readonly origin: string,
  ) {}

  static async start(): Promise<Harness> {
    const server = createServer(async (request, response) => {
      const url = new URL(request.url ?? "/", "http://127.0.0.1");
      const page = url.pathname.match(/^\/(memory|trace)\.html$/);
      if (page) {
        const origin = `http://${request.headers.host}`;
        response.writeHead(200, { "content-type": "text/html" });
        response.end(pageHtml({ title: page[1], cspSource: origin, nonce: newNonce(), scriptUri: `${origin}/media/${page[1]}.js`, styleUri: `${origin}/media/webview.css` }));
        return;
      }
      const file = url.pathname.match(/^\/media\/([a-z]+\.(js|css))$/);
      if (!file) {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, { "content-type": TYPES[file[2]] });
      response.end(await readFile(join(EXTENSION_ROOT, "media", file[1])));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60_000 });
    return new Harness(server, browser, `http://127.0.0.1:${port}`);
  }

  /** A fresh page with the view loaded and its `ready` message received. */
  async open(view: "memory" | "trace"): Promise<Page> {
    const page = await this.browser.newPage();
    page.on("pageerror", (error) => {
      throw error;
    });
    await page.addInitScript(() => {
      const w = window as any;
      w.__posted = [];
      w.__xss = [];
      w.__violations = [];
      document.addEventListener("securitypolicyviolation", (e) => w.__violations.push(e.violatedDirective));
      w.__state = JSON.parse(sessionStorage.getItem("vscodeState") ?? "null");
      w.acquireVsCodeApi = () => ({
        postMessage: (m: unknown) => w.__posted.push(m),
        getState: () => w.__state,
        // kept across reloads of this page, as VS Code keeps a webview's state
        setState: (state: unknown) => {
          w.__state = state;
          sessionStorage.setItem("vscodeState", JSON.stringify(state));
        },
      });
    });
    await page.goto(`${this.origin}/${view}.html`);
    await page.waitForFunction(() => (window as any).__posted.some((m: any) => m.type === "ready"));
    return page;
  }

  async stop(): Promise<void> {
    await this.browser.close();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** What the extension would post into the webview. */
export async function send(page: Page, message: unknown): Promise<void> {
  await page.evaluate((m) => window.postMessage(m, "*"), message);
}

export async function posted(page: Page): Promise<any[]> {
  return page.evaluate(() => (window as any).__posted);
}
