// The status-bar item's text: server state and the current file's total.

export type ServerState = "starting" | "running" | "stopped" | "failed";

/** The `memlens/documentSummary` result (memlens/lsp_server/features/summary.py). */
export interface DocumentSummary {
  models: number;
  estimated: number;
  weight_bytes: number;
  label: string | null;
  budget_bytes: number;
  budget_label: string;
  over_budget: boolean;
  /** Loads whose serving total (weights + KV cache + activations) exceeds the budget. */
  over_budget_models: number;
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
      summary.models > 0
        ? `This file: ${summary.label} (at each model's dtype; ${summary.estimated} of ` +
            `${summary.models} models estimated)`
        : `This file: ${summary.label} (the largest nn.Module class)`,
      budgetLine(summary),
    );
    warning = summary.over_budget;
  }
  lines.push(summary?.label ? "Click to show this file's estimates." : "Click to show the memory view.");
  return { text, tooltip: lines.join("\n"), warning };
}

function budgetLine(summary: DocumentSummary): string {
  const over = summary.over_budget_models;
  if (over > 0) {
    const models = over === 1 ? "1 model needs" : `${over} models need`;
    return `Budget ${summary.budget_label}: ${models} more (see Problems for what each counts)`;
  }
  if (summary.over_budget) {
    return `Budget ${summary.budget_label}: the weights alone exceed it`;
  }
  return `Budget ${summary.budget_label}: fits`;
}
