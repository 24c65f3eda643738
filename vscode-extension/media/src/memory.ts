// The memory view: totals against the budget, stacked bars per layer, a sortable table.
import { ReportError, formatBytes } from "../../src/webviews/model/format";
import { Bar, MemoryView, formatCell, memoryView, sortRows } from "../../src/webviews/model/memory";
import type { ShowReport } from "../../src/webviews/messages";
import { el, notice, segment, show, vscode } from "./dom";

const LEGEND: Record<string, string> = {
  weights: "Weights",
  kv: "KV cache",
  activations: "Activations",
  measured: "Measured",
  before: "Before",
  after: "After",
};

let current: MemoryView | null = null;
let sortKey: string | null = null;
let descending = true;

function barTotal(bar: Bar): number {
  return bar.segments.reduce((sum, s) => sum + s.bytes, 0);
}

function barRow(label: string, bar: Bar, scale: number, className: string): HTMLElement {
  const total = barTotal(bar);
  const track = el("span", "bar-track");
  for (const s of bar.segments) {
    if (s.bytes > 0) {
      track.appendChild(segment(`seg-${s.kind}`, s.bytes / scale, `${LEGEND[s.kind]}: ${formatBytes(s.bytes)}`));
    }
  }
  return el("div", `bar-row ${className}`, el("span", "bar-label", label), track, el("span", "bar-value", formatBytes(total)));
}

function totalsChart(view: MemoryView): HTMLElement {
  const scale = Math.max(view.budget ?? 0, ...view.totals.map(barTotal), 1);
  const chart = el("div", "chart totals", ...view.totals.map((bar) => barRow(bar.label, bar, scale, "total-bar")));
  if (view.budget !== null) {
    const line = el("span", "budget-line");
    line.style.left = `${(view.budget / scale) * 100}%`;
    line.title = `Memory budget: ${formatBytes(view.budget)}`;
    const over = view.totals.some((bar) => barTotal(bar) > (view.budget ?? Infinity));
    chart.appendChild(el("div", "budget", el("span", "bar-label", "Budget"), el("span", "bar-track budget-track", line), el("span", `bar-value ${over ? "over" : ""}`, formatBytes(view.budget))));
  }
  return chart;
}

function layersChart(view: MemoryView): HTMLElement {
  const scale = Math.max(...view.layers.flatMap((g) => g.bars.map(barTotal)), 1);
  return el(
    "div",
    "chart layers",
    ...view.layers.map((group) =>
      el("div", "layer-group", ...group.bars.map((bar, i) => barRow(i === 0 ? group.name : "", bar, scale, `layer-bar bar-${bar.label}`))),
    ),
  );
}

function legend(view: MemoryView): HTMLElement {
  const kinds = new Set([...view.totals, ...view.layers.flatMap((g) => g.bars)].flatMap((b) => b.segments.map((s) => s.kind)));
  return el("div", "legend", ...[...kinds].map((k) => el("span", "legend-item", el("span", `swatch seg-${k}`), LEGEND[k])));
}

function table(view: MemoryView): HTMLElement {
  const rows = sortKey === null ? view.rows : sortRows(view.rows, sortKey, descending);
  const header = el(
    "tr",
    "",
    ...view.columns.map((c) => {
      const button = el("button", "sort", c.title, c.key === sortKey ? (descending ? " ▼" : " ▲") : "");
      button.addEventListener("click", () => {
        descending = c.key === sortKey ? !descending : c.format !== "text";
        sortKey = c.key;
        render();
      });
      const th = el("th", c.format === "text" ? "" : "num", button);
      th.setAttribute("aria-sort", c.key === sortKey ? (descending ? "descending" : "ascending") : "none");
      return th;
    }),
  );
  const body = rows.map((row) => el("tr", "", ...view.columns.map((c) => el("td", c.format === "text" ? "" : "num", formatCell(row[c.key] ?? null, c.format)))));
  return el("table", "layers-table", el("thead", "", header), el("tbody", "", ...body));
}

function render(): void {
  if (current === null) {
    show(notice("No memory report yet", "Click “Profile memory” or “Compress…” above a from_pretrained line, or run “memlens: Estimate memory” from the Command Palette."));
    return;
  }
  const view = current;
  show(
    el("header", "", el("h1", "", view.title), el("p", "subtitle", view.subtitle)),
    el("dl", "figures", ...view.figures.flatMap(([k, v]) => [el("dt", "", k), el("dd", "", v)])),
    legend(view),
    el("h2", "", "Totals"),
    totalsChart(view),
    el("h2", "", `Per layer (${view.layers.length})`),
    layersChart(view),
    table(view),
    view.notes.length > 0 && el("ul", "notes", ...view.notes.map((n) => el("li", "", n))),
  );
}

window.addEventListener("message", (event: MessageEvent<ShowReport>) => {
  if (event.data?.type !== "report") {
    return;
  }
  try {
    current = memoryView(event.data.report, event.data.budgetBytes);
    sortKey = null;
    render();
  } catch (error) {
    if (!(error instanceof ReportError)) {
      throw error;
    }
    current = null;
    show(notice("This memory report cannot be drawn", error.message, "notice error"));
  }
});

render();
vscode.postMessage({ type: "ready" });
