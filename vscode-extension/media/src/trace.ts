// The trace view: service topology, the trace list, one trace's waterfall, drawn from the
// server's payload (positions, rows and texts come computed). Clicking a span asks the
// extension to open its code location; nothing here navigates by itself.
import { ReportError } from "../../src/webviews/model/format";
import { TraceReport, WaterfallRow, parseTraceReport } from "../../src/webviews/model/trace";
import type { ShowTraces } from "../../src/webviews/messages";
import { el, notice, segment, show, svg, vscode } from "./dom";

// Laid out top to bottom (callers above callees) so the graph fits a panel beside the
// editor (500–700 px): the server's columns (call depth) become rows here, its rows
// (siblings) columns. Each edge's label sits just above its callee, in two lines.
const NODE_W = 150;
const NODE_H = 36;
const H_GAP = 40; // between siblings: room for a label as wide as a box
const V_GAP = 64; // between depths: room for a two-line label above the callee
const LINE_H = 13;

function topology(report: TraceReport): Element {
  const nodes = report.nodes;
  const at = new Map(nodes.map((n) => [n.name, { x: 10 + n.row * (NODE_W + H_GAP), y: 10 + n.column * (NODE_H + V_GAP) }]));
  const width = Math.max(...[...at.values()].map((p) => p.x + NODE_W + 10), 200);
  const height = Math.max(...[...at.values()].map((p) => p.y + NODE_H + 10), 60);
  const graph = svg("svg", { class: "topology", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  graph.appendChild(svg("title", {}, "Service topology"));
  graph.appendChild(
    svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 8, markerHeight: 8, orient: "auto-start-reverse" }, svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow" }))),
  );
  const labels: SVGElement[] = [];
  const incoming = new Map<string, number>();
  for (const e of report.edges) {
    const from = at.get(e.caller);
    const to = at.get(e.callee);
    if (!from || !to) {
      continue;
    }
    const x1 = from.x + NODE_W / 2;
    const y1 = from.y + NODE_H;
    const x2 = to.x + NODE_W / 2;
    const y2 = to.y;
    graph.appendChild(svg("g", { class: `edge${e.errors ? " has-errors" : ""}` }, svg("line", { x1, y1, x2, y2, "marker-end": "url(#arrow)" })));
    // a second edge into the same service stacks its label above the first
    const stacked = incoming.get(e.callee) ?? 0;
    incoming.set(e.callee, stacked + 1);
    const top = to.y - 6 - (e.labelLines.length * (stacked + 1) - 1) * LINE_H;
    const lines = e.labelLines.map((line, i) => svg("tspan", { x: to.x + NODE_W / 2, y: top + i * LINE_H }, line));
    // drawn after every line and box: a label is never covered
    labels.push(svg("text", { "text-anchor": "middle", class: `edge-label${e.errors ? " has-errors" : ""}` }, ...lines));
  }
  for (const n of nodes) {
    const p = at.get(n.name)!;
    graph.appendChild(
      svg("g", { class: "node" },
        svg("title", {}, n.name),
        svg("rect", { x: p.x, y: p.y, width: NODE_W, height: NODE_H, rx: 6 }),
        svg("text", { x: p.x + NODE_W / 2, y: p.y + NODE_H / 2 + 4, "text-anchor": "middle", class: "node-label" }, n.name),
      ),
    );
  }
  labels.forEach((label) => graph.appendChild(label));
  return graph;
}

function traceList(report: TraceReport): HTMLElement {
  const rows = report.traces.map((t) => {
    const id = el("td", "trace-id", t.trace_id_text);
    id.title = t.trace_id;
    const row = el("tr", t.trace_id === report.trace?.traceId ? "selected" : "",
      el("td", "num", t.start_text), id,
      el("td", "", t.root_service), el("td", "", t.root_name), el("td", "num", t.duration_text),
      el("td", "num", t.span_count_text), el("td", "num", t.error_count_text));
    row.tabIndex = 0;
    row.addEventListener("click", () => vscode.postMessage({ type: "openTrace", traceId: t.trace_id }));
    return row;
  });
  const head = el("tr", "", ...["Started", "Trace", "Service", "Root span", "Duration", "Spans", "Errors"].map((h) => el("th", "", h)));
  return el("div", "table-scroll", el("table", "trace-list", el("thead", "", head), el("tbody", "", ...rows)));
}

function spanRow(row: WaterfallRow, totalMs: number, details: HTMLElement): HTMLElement {
  const name = el("span", "span-name", row.name);
  name.style.paddingLeft = `${row.depth * 14}px`;
  const track = el("span", "bar-track");
  const offset = el("span", "bar-offset");
  offset.style.width = `${(row.offsetMs / Math.max(totalMs, 1e-9)) * 100}%`;
  track.append(offset, segment(row.error ? "seg-error" : "seg-span", row.durationMs / Math.max(totalMs, 1e-9), `${row.name}: ${row.durationText}`));
  const button = el("button", `span-row${row.error ? " error" : ""}`, name, el("span", "span-service", row.service), track, el("span", "bar-value", row.durationText));
  button.title = row.locationText;
  button.dataset.spanId = row.spanId;
  button.addEventListener("click", () => {
    document.querySelectorAll(".span-row.selected").forEach((b) => b.classList.remove("selected"));
    button.classList.add("selected");
    details.replaceChildren(
      el("h3", "", row.name),
      el("p", "", `${row.service} · ${row.durationText} · ${row.locationText}${row.statusMessage ? ` · ${row.statusMessage}` : ""}`),
      el("table", "attributes", el("tbody", "", ...row.attributes.map(([k, v]) => el("tr", "", el("th", "", k), el("td", "", v))))),
    );
    if (row.location) {
      vscode.postMessage({ type: "openLocation", path: row.location.path, line: row.location.line });
    }
  });
  return button;
}

const NO_TRACES = notice(
  "No traces yet",
  "Start your services with `memlens run -- python service.py` and turn on the memlens.tracing.enabled setting; their traces appear here.",
);

function render(report: TraceReport): void {
  if (report.services.length === 0 && report.traces.length === 0 && report.trace === null) {
    show(NO_TRACES);
    return;
  }
  const details = el("section", "span-details");
  const trace = report.trace;
  const jaeger = trace && trace.jaegerUrl !== null ? el("button", "jaeger", "Open in Jaeger") : null;
  jaeger?.addEventListener("click", () => vscode.postMessage({ type: "openJaeger", traceId: trace!.traceId }));
  show(
    el("h1", "", "Traces"),
    el("h2", "", `Services (${report.services.length})`),
    report.services.length > 0 ? el("div", "topology-scroll", topology(report)) : el("p", "", "No service calls recorded."),
    el("h2", "", `Recent traces (${report.traces.length})`),
    traceList(report),
    el("h2", "", trace ? `Trace ${trace.traceId}` : "No trace selected"),
    jaeger,
    trace && el("div", "waterfall", ...trace.rows.map((r) => spanRow(r, trace.totalMs, details))),
    details,
  );
}

window.addEventListener("message", (event: MessageEvent<ShowTraces>) => {
  if (event.data?.type !== "traces") {
    return;
  }
  try {
    render(parseTraceReport(event.data.report));
  } catch (error) {
    if (!(error instanceof ReportError)) {
      throw error;
    }
    show(notice("This trace report cannot be drawn", error.message, "notice error"));
  }
});

show(NO_TRACES);
vscode.postMessage({ type: "ready" });
