// Messages between the extension and its webviews.

/** Extension → memory view: the `memlens/memoryReport` payload (memlens/lsp_server/memory_view/ builds it). */
export interface ShowReport {
  type: "report";
  view: unknown;
}

/** Extension → memory view: a run that will replace the report started (its text), or
 * ended (null). */
export interface Updating {
  type: "updating";
  text: string | null;
}

/** Extension → trace view. */
export interface ShowTraces {
  type: "traces";
  report: unknown;
}

/** Webview → extension. */
export type FromWebview =
  | { type: "ready" }
  | { type: "openLocation"; path: string; line: number }
  | { type: "openJaeger"; traceId: string }
  | { type: "openTrace"; traceId: string }
  | { type: "revealPath"; path: string };

/** Accepts only well-formed messages: a webview is not trusted to send sane data. */
export function parseWebviewMessage(raw: unknown): FromWebview | null {
  if (typeof raw !== "object" || raw === null) {
    return null;
  }
  const m = raw as Record<string, unknown>;
  switch (m.type) {
    case "ready":
      return { type: "ready" };
    case "openLocation":
      return typeof m.path === "string" && m.path !== "" && Number.isInteger(m.line) && (m.line as number) >= 1
        ? { type: "openLocation", path: m.path, line: m.line as number }
        : null;
    case "openJaeger":
    case "openTrace":
      return typeof m.traceId === "string" && /^[0-9a-f]{32}$/.test(m.traceId)
        ? { type: m.type, traceId: m.traceId }
        : null;
    case "revealPath":
      // an absolute path (the checkpoint the report names); never run, only shown
      return typeof m.path === "string" && (m.path.startsWith("/") || /^[A-Za-z]:[\\/]/.test(m.path))
        ? { type: "revealPath", path: m.path }
        : null;
    default:
      return null;
  }
}
