// The `memlens.*` settings in the shape the language server parses
// (memlens/lsp_server/settings.py).

export interface ServerSettings {
  memoryBudget: string | number | null;
  hints: { enabled: boolean };
  tracing: { enabled: boolean };
  collector: { port: number };
  jaeger: { url: string | null };
  training: { devices: number };
  trusted: boolean;
}

/** Reads one `memlens.<key>` setting (the workspace configuration). */
export type SettingReader = (key: string) => unknown;

export function serverSettings(read: SettingReader, trusted: boolean): ServerSettings {
  const budget = read("memoryBudget");
  const port = read("collector.port");
  const url = read("jaeger.url");
  const devices = read("training.devices");
  return {
    memoryBudget:
      typeof budget === "number" || (typeof budget === "string" && budget.trim())
        ? budget
        : null,
    hints: { enabled: read("hints.enabled") !== false },
    tracing: { enabled: read("tracing.enabled") === true && trusted },
    collector: { port: typeof port === "number" ? port : 4318 },
    // as typed: the server keeps it only if it is an http(s) URL (memlens/tracing/jaeger.py)
    jaeger: { url: typeof url === "string" ? url : null },
    training: { devices: Number.isInteger(devices) && (devices as number) >= 1 ? (devices as number) : 1 },
    trusted,
  };
}
