// The status-bar item's text: server state and the current file's total.

export type ServerState = "starting" | "running" | "stopped" | "failed";

/** The `memlens/documentSummary` result (memlens/lsp_server/features/summary.py). */
export interface DocumentSummary {
  loads: number;
  estimated: number;
  weight_bytes: number;
  label: string | null;
  budget_bytes: number;
  budget_label: string;
  over_budget: boolean;
}

export interface StatusView {
  text: string;
  tooltip: string;
  warning: boolean;
}

const ICONS: Record<ServerState, string> = {
  starting: "$(sync~spin)",
  running: "$(pulse)",
  stopped: "$(debug-stop)",
  failed: "$(error)",
};

export function statusView(
  state: ServerState,
  trusted: boolean,
  summary: DocumentSummary | null,
): StatusView {
  const mode = trusted ? "" : " (restricted: static hints only)";
  const lines = [`memlens language server: ${state}${mode}`];
  let text = `${ICONS[state]} memlens`;
  let warning = state === "failed";
  if (state === "running" && summary?.label) {
    text += ` ${summary.label}`;
    lines.push(
      `This file: ${summary.label} of weights (${summary.estimated} of ${summary.loads} ` +
        `model loads estimated)`,
      `Budget: ${summary.budget_label}${summary.over_budget ? " — over budget" : ""}`,
    );
    warning = summary.over_budget;
  }
  lines.push("Click to show the memory view.");
  return { text, tooltip: lines.join("\n"), warning };
}
