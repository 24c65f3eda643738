// One code-server with the packaged extension, a copy of examples/ and a headless
// Chromium page on it; helpers that wait for conditions in VS Code's DOM.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Browser, Frame, Locator, Page, chromium } from "playwright-core";
import { CodeServer, REPO_ROOT, copyExamples } from "../../scripts/codeServer";
import { CHROMIUM, CHROMIUM_ARGS } from "../webview/harness";

/** Screenshots and timings of every run: build/e2e/<run>/ at the repository root. */
export const OUT = join(REPO_ROOT, "build", "e2e");
// Generous: CI machines are slow, and the first Profile imports torch in the worker.
export const STEP_MS = Number(process.env.MEMLENS_E2E_STEP_MS ?? 180_000);

export class Workbench {
  private readonly timings: Record<string, number> = {};
  private readonly started = Date.now();

  private constructor(
    private readonly out: string,
    readonly workspace: string,
    private readonly server: CodeServer,
    private readonly browser: Browser,
    readonly page: Page,
  ) {}

  static async start(
    run: string,
    options: { workspaceTrust?: boolean; settings?: Record<string, unknown> } = {},
  ): Promise<Workbench> {
    const out = join(OUT, run);
    mkdirSync(out, { recursive: true });
    const workspace = copyExamples(join(out, "workspace"));
    const server = await CodeServer.start({
      home: join(out, "code-server"),
      workspace,
      settings: { "memlens.memoryBudget": "24GiB", ...options.settings },
      env: { HF_HUB_OFFLINE: "1", MEMLENS_OFFLINE: "1" },
      workspaceTrust: options.workspaceTrust,
    });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60_000 });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.setDefaultTimeout(STEP_MS);
    await page.goto(server.folderUrl(workspace));
    return new Workbench(out, workspace, server, browser, page);
  }

  async shot(name: string): Promise<void> {
    this.timings[name] = (Date.now() - this.started) / 1000;
    await this.page.screenshot({ path: join(this.out, `${name}.png`) });
  }

  async openFile(name: string): Promise<void> {
    await this.page.locator(".explorer-folders-view .monaco-list-row").filter({ hasText: name }).click();
    await this.page.locator(".tab.active").filter({ hasText: name }).waitFor();
  }

  /** The editor line holding `text`. */
  line(text: string): Locator {
    return this.page.locator(".editor-instance .view-line").filter({ hasText: text });
  }

  /**
   * Opens the quick-fix menu on the line holding `line` and applies the action titled `title`.
   * Asks again until the action is offered: right after a window reload the language server
   * is still starting, and VS Code answers the first Ctrl+. with an empty menu.
   */
  async applyQuickFix(line: string, title: string): Promise<void> {
    const action = this.page.locator(".action-widget .monaco-list-row, .context-view .action-label").filter({ hasText: title }).first();
    await this.until(async () => {
      await this.line(line).click();
      await this.page.keyboard.press("Control+.");
      const offered = await action.waitFor({ timeout: 5_000 }).then(() => true, () => false);
      if (!offered) await this.page.keyboard.press("Escape");
      return offered;
    }, `the quick fix "${title}"`);
    await action.click();
  }

  /** Waits until `condition` holds (polled: VS Code gives no event for most of its DOM). */
  async until(condition: () => Promise<boolean>, what: string): Promise<void> {
    const deadline = Date.now() + STEP_MS;
    while (!(await condition().catch(() => false))) {
      if (Date.now() > deadline) {
        await this.page.screenshot({ path: join(this.out, "failure.png") });
        throw new Error(`${what}: not after ${STEP_MS / 1000} s (see failure.png)`);
      }
      await this.page.waitForTimeout(250);
    }
  }

  /** The webview page (VS Code nests it two iframes deep) whose content shows `text`. */
  async webview(text: string): Promise<Frame> {
    let found: Frame | undefined;
    await this.until(async () => {
      for (const frame of this.page.frames()) {
        if ((await frame.locator("#root").filter({ hasText: text }).count().catch(() => 0)) > 0) {
          found = frame;
          return true;
        }
      }
      return false;
    }, `a webview showing "${text}"`);
    return found!;
  }

  /** Opens the Command Palette on `query`; returns the titles it offers. */
  async paletteTitles(query: string, expect: string): Promise<string[]> {
    await this.page.keyboard.press("Control+Shift+P");
    const input = this.page.locator(".quick-input-widget input");
    await input.waitFor();
    await input.fill(`>${query}`);
    const rows = this.page.locator(".quick-input-list .monaco-list-row");
    await rows.filter({ hasText: expect }).first().waitFor();
    return (await rows.locator(".label-name").allTextContents()).map((t) => t.replace(/\u00a0/g, " "));
  }

  /** Runs a command from the Command Palette by its title. */
  async runCommand(title: string): Promise<void> {
    await this.paletteTitles(title, title);
    await this.page.locator(".quick-input-list .monaco-list-row").filter({ hasText: title }).first().click();
  }

  async stop(): Promise<void> {
    writeFileSync(join(this.out, "timings.json"), JSON.stringify(this.timings, null, 1));
    await this.browser.close();
    this.server.stop();
  }
}
