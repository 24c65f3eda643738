// `memlens/traceReport` JSON: its types and their validation. The server builds every row,
// position, link and text the view draws (memlens/tracing/trace_view.py documents the
// contract); this module only checks that the payload is what that contract says.
//
// The server sends it when traces change and in answer to the `memlens.traces` command,
// arguments `[{"trace_id"?: hex32}]`:
//
//   {
//     "version":  1,
//     "services": [str],
//     "nodes":    [{name, column, row}]                      the topology's layout
//     "edges":    [{caller, callee, calls, errors, p50_ms, p95_ms, label, label_lines}],
//     "traces":   [{trace_id (32 lowercase hex), root_service, root_name, start_ms,
//                   duration_ms, span_count, error_count, duration_text, span_count_text,
//                   error_count_text, start_text, trace_id_text, jaeger_url}],
//     "trace":    null | {trace_id, jaeger_url, total_ms, rows: [row], spans (not drawn)},
//     "jaeger_url": null | "http(s)://…"
//   }
//
// A row: {span_id (16 hex), parent_span_id (null | 16 hex), name, service, depth, offset_ms,
// duration_ms, duration_text, error, status_message (null | str), attributes: [[key, text]],
// location: null | CodeLocation, location_text}. CodeLocation {path (absolute, or relative
// to the first workspace folder), line (1-based), function (null | str)}. Every jaeger_url
// is null or an http(s) URL.
import { ReportError, arrayField, booleanField, field, recordAt, stringField } from "./format";

export const TRACE_REPORT_VERSION = 1;

export interface NodePosition {
  name: string;
  column: number;
  row: number;
}

export interface ServiceEdge {
  caller: string;
  callee: string;
  calls: number;
  errors: number;
  label: string;
  /** The label in two lines: counts, then latencies. */
  labelLines: string[];
}

export interface CodeLocation {
  path: string;
  line: number;
  function: string | null;
}

export interface TraceSummary {
  trace_id: string;
  root_service: string;
  root_name: string;
  duration_text: string;
  span_count_text: string;
  error_count_text: string;
  start_text: string;
  trace_id_text: string;
  jaegerUrl: string | null;
}

export interface WaterfallRow {
  spanId: string;
  name: string;
  service: string;
  depth: number;
  offsetMs: number;
  durationMs: number;
  durationText: string;
  error: boolean;
  statusMessage: string | null;
  attributes: [string, string][];
  location: CodeLocation | null;
  locationText: string;
}

export interface TraceReport {
  services: string[];
  nodes: NodePosition[];
  edges: ServiceEdge[];
  traces: TraceSummary[];
  trace: { traceId: string; jaegerUrl: string | null; totalMs: number; rows: WaterfallRow[] } | null;
  jaegerUrl: string | null;
}

const HEX_ID = /^[0-9a-f]+$/;

function hexId(record: Record<string, unknown>, key: string, where: string, length: number): string {
  const value = stringField(record, key, where);
  if (value.length !== length || !HEX_ID.test(value)) {
    throw new ReportError(`${where}.${key} is not ${length} lowercase hex digits`);
  }
  return value;
}

function numberField(record: Record<string, unknown>, key: string, where: string, what: string, integer = false): number {
  const value = field(record, key, where);
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
    throw new ReportError(`${where}.${key} is not ${what}: ${JSON.stringify(value)}`);
  }
  return value;
}

const count = (r: Record<string, unknown>, key: string, where: string) => numberField(r, key, where, "a count", true);
const ms = (r: Record<string, unknown>, key: string, where: string) => numberField(r, key, where, "a duration in ms");

function nullableString(record: Record<string, unknown>, key: string, where: string): string | null {
  return record[key] === null || record[key] === undefined ? null : stringField(record, key, where);
}

/** A link the extension may open: http(s) only; anything else is no link. */
function link(record: Record<string, unknown>, key: string): string | null {
  const value = record[key];
  return typeof value === "string" && /^https?:\/\//.test(value) ? value : null;
}

function nodeAt(raw: unknown, where: string): NodePosition {
  const n = recordAt(raw, where);
  return { name: stringField(n, "name", where), column: count(n, "column", where), row: count(n, "row", where) };
}

function edgeAt(raw: unknown, where: string): ServiceEdge {
  const e = recordAt(raw, where);
  return {
    caller: stringField(e, "caller", where),
    callee: stringField(e, "callee", where),
    calls: count(e, "calls", where),
    errors: count(e, "errors", where),
    label: stringField(e, "label", where),
    labelLines: arrayField(e, "label_lines", where).map((line, i) => {
      if (typeof line !== "string") {
        throw new ReportError(`${where}.label_lines[${i}] is not a string`);
      }
      return line;
    }),
  };
}

function summaryAt(raw: unknown, where: string): TraceSummary {
  const t = recordAt(raw, where);
  return {
    trace_id: hexId(t, "trace_id", where, 32),
    root_service: stringField(t, "root_service", where),
    root_name: stringField(t, "root_name", where),
    duration_text: stringField(t, "duration_text", where),
    span_count_text: stringField(t, "span_count_text", where),
    error_count_text: stringField(t, "error_count_text", where),
    start_text: stringField(t, "start_text", where),
    trace_id_text: stringField(t, "trace_id_text", where),
    jaegerUrl: link(t, "jaeger_url"),
  };
}

function locationAt(raw: unknown, where: string): CodeLocation | null {
  if (raw === null || raw === undefined) {
    return null;
  }
  const l = recordAt(raw, where);
  const line = count(l, "line", where);
  if (line < 1) {
    throw new ReportError(`${where}.line is not a line number: ${line}`);
  }
  return { path: stringField(l, "path", where), line, function: nullableString(l, "function", where) };
}

function attributesAt(raw: unknown, where: string): [string, string][] {
  return (Array.isArray(raw) ? raw : []).map((pair, i) => {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "string" || typeof pair[1] !== "string") {
      throw new ReportError(`${where}[${i}] is not a [key, text] pair`);
    }
    return [pair[0], pair[1]];
  });
}

function rowAt(raw: unknown, where: string): WaterfallRow {
  const r = recordAt(raw, where);
  return {
    spanId: hexId(r, "span_id", where, 16),
    name: stringField(r, "name", where),
    service: stringField(r, "service", where),
    depth: count(r, "depth", where),
    offsetMs: ms(r, "offset_ms", where),
    durationMs: ms(r, "duration_ms", where),
    durationText: stringField(r, "duration_text", where),
    error: booleanField(r, "error", where),
    statusMessage: nullableString(r, "status_message", where),
    attributes: attributesAt(field(r, "attributes", where), `${where}.attributes`),
    location: locationAt(r.location, `${where}.location`),
    locationText: stringField(r, "location_text", where),
  };
}

/** Validates a `memlens/traceReport` payload; ReportError names the bad field. */
export function parseTraceReport(raw: unknown): TraceReport {
  const r = recordAt(raw, "traceReport");
  if (r.version !== TRACE_REPORT_VERSION) {
    throw new ReportError(`traceReport.version is ${JSON.stringify(r.version)}, not ${TRACE_REPORT_VERSION}: this extension and its memlens server do not match`);
  }
  const services = arrayField(r, "services", "traceReport").map((s, i) => {
    if (typeof s !== "string") {
      throw new ReportError(`traceReport.services[${i}] is not a string`);
    }
    return s;
  });
  const nodes = arrayField(r, "nodes", "traceReport").map((n, i) => nodeAt(n, `traceReport.nodes[${i}]`));
  const edges = arrayField(r, "edges", "traceReport").map((e, i) => edgeAt(e, `traceReport.edges[${i}]`));
  const traces = arrayField(r, "traces", "traceReport").map((t, i) => summaryAt(t, `traceReport.traces[${i}]`));
  let trace: TraceReport["trace"] = null;
  if (r.trace !== null && r.trace !== undefined) {
    const t = recordAt(r.trace, "traceReport.trace");
    trace = {
      traceId: hexId(t, "trace_id", "traceReport.trace", 32),
      jaegerUrl: link(t, "jaeger_url"),
      totalMs: ms(t, "total_ms", "traceReport.trace"),
      rows: arrayField(t, "rows", "traceReport.trace").map((row, i) => rowAt(row, `traceReport.trace.rows[${i}]`)),
    };
  }
  return { services, nodes, edges, traces, trace, jaegerUrl: link(r, "jaeger_url") };
}

/** The Jaeger pages a report links to, by trace id (what `Open in Jaeger` opens). */
export function jaegerLinks(report: TraceReport): Map<string, string> {
  const links = new Map<string, string>();
  for (const { trace_id, jaegerUrl } of report.traces) {
    if (jaegerUrl !== null) {
      links.set(trace_id, jaegerUrl);
    }
  }
  if (report.trace?.jaegerUrl) {
    links.set(report.trace.traceId, report.trace.jaegerUrl);
  }
  return links;
}
