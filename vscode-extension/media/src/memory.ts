// The memory view draws the payload memlens/lsp_server/memory_view/ built: totals against
// the budget, stacked bars per layer, a table sortable by its cells' raw values.
import { ReportError } from "../../src/webviews/model/format";
import { Bar, MemoryView, parseMemoryView } from "../../src/webviews/model/memory";
import type { ShowReport, Updating } from "../../src/webviews/messages";
import { el, notice, segment, show, vscode } from "./dom";
import { sortRows } from "./sort";

let current: MemoryView | null = null;
let sortKey: string | null = null;
let descending = true;
/** Every layer's row instead of the rows grouped by layer kind. */
let allRows = false;
/** The run that will replace this report, while it runs. */
let updating: string | null = null;
/** Above this many layers the per-layer chart starts folded. */
const FOLDED_CHART_LAYERS = 40;

function barRow(label: string, bar: Bar, scale: number, className: string): HTMLElement {
  const track = el("span", "bar-track");
  for (const s of bar.segments) {
    if (s.bytes > 0) {
      track.appendChild(segment(`seg-${s.kind}`, s.bytes / scale, `${s.label}: ${s.text}`));
    }
  }
  const name = el("span", "bar-label", label);
  name.title = label;
  return el("div", `bar-row ${className}`, name, track, el("span", "bar-value", bar.total_text));
}

function totalsChart(view: MemoryView): HTMLElement {
  const scale = Math.max(view.budget?.bytes ?? 0, ...view.totals.map((bar) => bar.total_bytes), 1);
  const chart = el("div", "chart totals", ...view.totals.map((bar) => barRow(bar.label, bar, scale, "total-bar")));
  if (view.budget !== null) {
    const line = el("span", "budget-line");
    line.style.left = `${(view.budget.bytes / scale) * 100}%`;
    line.title = `Memory budget: ${view.budget.text}`;
    chart.appendChild(el("div", "budget", el("span", "bar-label", "Budget"), el("span", "bar-track budget-track", line), el("span", `bar-value ${view.budget.exceeded ? "over" : ""}`, view.budget.text)));
  }
  return chart;
}

function layersChart(view: MemoryView): HTMLElement {
  const scale = Math.max(...view.layers.flatMap((g) => g.bars.map((bar) => bar.total_bytes)), 1);
  return el(
    "div",
    "chart layers",
    ...view.layers.map((group) =>
      el("div", "layer-group", ...group.bars.map((bar, i) => barRow(i === 0 ? group.name : "", bar, scale, `layer-bar bar-${bar.label}`))),
    ),
  );
}

function legend(view: MemoryView): HTMLElement {
  return el("div", "legend", ...view.legend.map((item) => el("span", "legend-item", el("span", `swatch seg-${item.kind}`), item.label)));
}

function table(view: MemoryView): HTMLElement {
  const key = sortKey;
  const grouped = !allRows && view.summary_rows.length > 0;
  const shown = grouped ? view.summary_rows : view.rows;
  const rows = key === null ? shown : sortRows(shown, (row) => row[key]?.value ?? null, descending);
  const header = el(
    "tr",
    "",
    ...view.columns.map((c) => {
      const button = el("button", "sort", c.title, c.key === sortKey ? (descending ? " ▼" : " ▲") : "");
      button.addEventListener("click", () => {
        descending = c.key === sortKey ? !descending : c.numeric;
        sortKey = c.key;
        render();
      });
      const th = el("th", c.numeric ? "num" : "", button);
      th.setAttribute("aria-sort", c.key === sortKey ? (descending ? "descending" : "ascending") : "none");
      return th;
    }),
  );
  const body = rows.map((row) => el("tr", "", ...view.columns.map((c) => el("td", c.numeric ? "num" : "", row[c.key].text))));
  const tableBox = el("div", "table-scroll", el("table", "layers-table", el("thead", "", header), el("tbody", "", ...body)));
  if (view.summary_rows.length === 0) {
    return tableBox;
  }
  const toggle = el("button", "toggle-rows", grouped ? `Show all ${view.rows.length} layers` : "Group by layer kind");
  toggle.addEventListener("click", () => {
    allRows = !allRows;
    render();
  });
  return el("section", "", toggle, tableBox);
}

function checkpoint(path: string): HTMLElement {
  const reveal = el("button", "reveal", "Reveal");
  reveal.addEventListener("click", () => vscode.postMessage({ type: "revealPath", path }));
  const text = el("code", "path", path);
  text.title = path;
  return el("p", "checkpoint", "Checkpoint: ", text, " ", reveal);
}

function layersSection(view: MemoryView): HTMLElement {
  const title = `Per layer (${view.layers.length})`;
  if (view.layers.length <= FOLDED_CHART_LAYERS) {
    return el("section", "", el("h2", "", title), layersChart(view));
  }
  const details = el("details", "layers-details", el("summary", "", title), layersChart(view));
  return details;
}

function render(): void {
  if (current === null) {
    show(notice("No memory report yet", "Click “Profile memory” or “Compress…” above a from_pretrained line, or run “memlens: Estimate memory” from the Command Palette."));
    return;
  }
  const view = current;
  // a new report, a sort or a toggle keeps the reader where they were
  const scrolled = window.scrollY;
  const folded = document.querySelector<HTMLDetailsElement>(".layers-details");
  const open = folded?.open ?? false;
  show(
    updating !== null && el("p", "updating-banner", `Updating: ${updating} This is the previous report.`),
    el("header", "", el("h1", "", view.title), el("p", "subtitle", view.subtitle)),
    el("dl", "figures", ...view.figures.flatMap((f) => [el("dt", "", f.label), el("dd", "", f.text)])),
    view.checkpoint !== null && checkpoint(view.checkpoint),
    view.notes.length > 0 && el("ul", "notes", ...view.notes.map((n) => el("li", "", n))),
    legend(view),
    el("h2", "", "Totals"),
    totalsChart(view),
    table(view),
    layersSection(view),
  );
  const details = document.querySelector<HTMLDetailsElement>(".layers-details");
  if (details !== null) {
    details.open = open;
  }
  document.getElementById("root")?.classList.toggle("is-updating", updating !== null);
  window.scrollTo(0, scrolled);
}

window.addEventListener("message", (event: MessageEvent<ShowReport | Updating>) => {
  if (event.data?.type === "updating") {
    updating = typeof event.data.text === "string" ? event.data.text : null;
    if (current !== null) {
      render();
    }
    return;
  }
  if (event.data?.type !== "report") {
    return;
  }
  try {
    current = parseMemoryView(event.data.view);
    updating = null;
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
