// The `memlens.*` settings in the shape the language server parses
// (memlens/lsp_server/settings.py).

export interface ServerSettings {
  memoryBudget: string | number | null;
  hints: { enabled: boolean };
  tracing: { enabled: boolean };
  collector: { port: number };
  jaeger: { url: string | null };
  trusted: boolean;
}

/** Reads one `memlens.<key>` setting (the workspace configuration). */
export type SettingReader = (key: string) => unknown;

export function serverSettings(read: SettingReader, trusted: boolean): ServerSettings {
  const budget = read("memoryBudget");
  const port = read("collector.port");
  const url = read("jaeger.url");
  return {
    memoryBudget:
      typeof budget === "number" || (typeof budget === "string" && budget.trim())
        ? budget
        : null,
    hints: { enabled: read("hints.enabled") !== false },
    tracing: { enabled: read("tracing.enabled") === true && trusted },
    collector: { port: typeof port === "number" ? port : 4318 },
    jaeger: { url: jaegerBase(url) },
    trusted,
  };
}

/** `http(s)://host[:port][/path]` without a trailing slash, or null. */
export function jaegerBase(url: unknown): string | null {
  if (typeof url !== "string" || !/^https?:\/\/[^\s]+$/.test(url.trim())) {
    return null;
  }
  return url.trim().replace(/\/+$/, "");
}

/** The Jaeger UI page of one trace, or null when the id is not 16/32 hex digits. */
export function jaegerTraceUrl(base: string | null, traceId: string): string | null {
  if (base === null || !/^[0-9a-f]{16}([0-9a-f]{16})?$/.test(traceId)) {
    return null;
  }
  return `${base}/trace/${traceId}`;
}
