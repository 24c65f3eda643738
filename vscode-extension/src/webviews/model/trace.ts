// `memlens/traceReport` JSON → the service topology and one trace's waterfall.
//
// The contract (server → client notification `memlens/traceReport`; the server sends it
// when traces change and in answer to the `memlens.traces` command, arguments
// `[{"trace_id"?: hex32}]`):
//
//   {
//     "services": [str],                      optional; callers/callees of edges are added
//     "edges":    [ServiceEdge {caller, callee, calls, errors, p50_ms, p95_ms}],
//     "traces":   [TraceSummary {trace_id (32 lowercase hex), root_service, root_name,
//                                start_ms (Unix ms), duration_ms, span_count, error_count}],
//     "trace":    null | {"trace_id", "spans": [span]}       the one trace to draw
//     "jaeger_url": null | "http(s)://…"      else the memlens.jaeger.url setting is used
//   }
//
// A span is an OTLP/JSON span (lowercase hex ids) plus its service name:
//   {traceId (32 hex), spanId (16 hex), parentSpanId ("" or 16 hex), name, service,
//    startTimeUnixNano, endTimeUnixNano (decimal strings or integers),
//    attributes: [{key, value: {stringValue|intValue|doubleValue|boolValue}}],
//    status: {code: 0 unset | 1 ok | 2 error, message?}, location?: CodeLocation}
// CodeLocation {path (absolute, or relative to the first workspace folder), line (1-based),
// function} comes from `location`, else the OTel attributes code.file.path/code.filepath,
// code.line.number/code.lineno, code.function.name/code.function.
import {
  ReportError,
  arrayField,
  bytesField,
  field,
  isRecord,
  recordAt,
  stringField,
} from "./format";

export interface ServiceEdge {
  caller: string;
  callee: string;
  calls: number;
  errors: number;
  p50_ms: number;
  p95_ms: number;
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
  start_ms: number;
  duration_ms: number;
  span_count: number;
  error_count: number;
}

export interface Span {
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  name: string;
  service: string;
  startNs: bigint;
  endNs: bigint;
  error: boolean;
  statusMessage: string | null;
  attributes: [string, string][];
  location: CodeLocation | null;
}

export interface TraceReport {
  services: string[];
  edges: ServiceEdge[];
  traces: TraceSummary[];
  trace: { traceId: string; spans: Span[] } | null;
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

function edgeAt(raw: unknown, where: string): ServiceEdge {
  const e = recordAt(raw, where);
  return {
    caller: stringField(e, "caller", where),
    callee: stringField(e, "callee", where),
    calls: bytesField(e, "calls", where),
    errors: bytesField(e, "errors", where),
    p50_ms: bytesField(e, "p50_ms", where),
    p95_ms: bytesField(e, "p95_ms", where),
  };
}

function summaryAt(raw: unknown, where: string): TraceSummary {
  const t = recordAt(raw, where);
  return {
    trace_id: hexId(t, "trace_id", where, 32),
    root_service: stringField(t, "root_service", where),
    root_name: stringField(t, "root_name", where),
    start_ms: bytesField(t, "start_ms", where),
    duration_ms: bytesField(t, "duration_ms", where),
    span_count: bytesField(t, "span_count", where),
    error_count: bytesField(t, "error_count", where),
  };
}

/** An OTLP/JSON AnyValue as text. */
function anyValue(value: unknown): string {
  if (!isRecord(value)) {
    return JSON.stringify(value) ?? "";
  }
  for (const key of ["stringValue", "intValue", "doubleValue", "boolValue"]) {
    if (key in value) {
      return String(value[key]);
    }
  }
  return JSON.stringify(value);
}

function nanos(record: Record<string, unknown>, key: string, where: string): bigint {
  const value = field(record, key, where);
  if ((typeof value === "string" && /^\d+$/.test(value)) || (typeof value === "number" && Number.isInteger(value) && value >= 0)) {
    return BigInt(value);
  }
  throw new ReportError(`${where}.${key} is not a count of nanoseconds`);
}

const PATH_KEYS = ["code.file.path", "code.filepath"];
const LINE_KEYS = ["code.line.number", "code.lineno"];
const FUNCTION_KEYS = ["code.function.name", "code.function"];

/** The code location of a span: its `location`, else the OTel `code.*` attributes. */
function locationOf(span: Record<string, unknown>, attributes: Map<string, string>, where: string): CodeLocation | null {
  if (isRecord(span.location)) {
    const at = `${where}.location`;
    const line = bytesField(span.location, "line", at);
    const fn = span.location.function;
    return { path: stringField(span.location, "path", at), line, function: typeof fn === "string" ? fn : null };
  }
  const path = PATH_KEYS.map((k) => attributes.get(k)).find((v) => v !== undefined);
  const line = Number(LINE_KEYS.map((k) => attributes.get(k)).find((v) => v !== undefined));
  if (path === undefined || !Number.isInteger(line) || line < 1) {
    return null;
  }
  return { path, line, function: FUNCTION_KEYS.map((k) => attributes.get(k)).find((v) => v !== undefined) ?? null };
}

function spanAt(raw: unknown, where: string): Span {
  const s = recordAt(raw, where);
  const attributes = new Map<string, string>();
  for (const [i, a] of (Array.isArray(s.attributes) ? s.attributes : []).entries()) {
    const attribute = recordAt(a, `${where}.attributes[${i}]`);
    attributes.set(stringField(attribute, "key", `${where}.attributes[${i}]`), anyValue(attribute.value));
  }
  const status = isRecord(s.status) ? s.status : {};
  const parent = typeof s.parentSpanId === "string" && s.parentSpanId !== "" ? hexId(s, "parentSpanId", where, 16) : null;
  const service = typeof s.service === "string" ? s.service : attributes.get("service.name") ?? "unknown";
  return {
    traceId: hexId(s, "traceId", where, 32),
    spanId: hexId(s, "spanId", where, 16),
    parentSpanId: parent,
    name: stringField(s, "name", where),
    service,
    startNs: nanos(s, "startTimeUnixNano", where),
    endNs: nanos(s, "endTimeUnixNano", where),
    // OTLP status codes: 0 unset, 1 ok, 2 error (also as "STATUS_CODE_ERROR").
    error: status.code === 2 || status.code === "STATUS_CODE_ERROR",
    statusMessage: typeof status.message === "string" && status.message ? status.message : null,
    attributes: [...attributes.entries()],
    location: locationOf(s, attributes, where),
  };
}

/** Validates a `memlens/traceReport` payload; ReportError names the bad field. */
export function parseTraceReport(raw: unknown): TraceReport {
  const r = recordAt(raw, "traceReport");
  const edges = arrayField(r, "edges", "traceReport").map((e, i) => edgeAt(e, `traceReport.edges[${i}]`));
  const traces = arrayField(r, "traces", "traceReport").map((t, i) => summaryAt(t, `traceReport.traces[${i}]`));
  let trace: TraceReport["trace"] = null;
  if (r.trace !== null && r.trace !== undefined) {
    const t = recordAt(r.trace, "traceReport.trace");
    const traceId = hexId(t, "trace_id", "traceReport.trace", 32);
    const spans = arrayField(t, "spans", "traceReport.trace").map((s, i) => spanAt(s, `traceReport.trace.spans[${i}]`));
    trace = { traceId, spans };
  }
  const listed = Array.isArray(r.services) ? r.services.filter((s): s is string => typeof s === "string") : [];
  const services = [...new Set([...listed, ...edges.flatMap((e) => [e.caller, e.callee])])];
  const jaeger = r.jaeger_url;
  return { services, edges, traces, trace, jaegerUrl: typeof jaeger === "string" && /^https?:\/\//.test(jaeger) ? jaeger : null };
}

/** The report with `jaeger_url` set from the setting where the server sent none. */
export function withJaegerUrl(report: unknown, base: string | null): unknown {
  return isRecord(report) && !report.jaeger_url && base !== null ? { ...report, jaeger_url: base } : report;
}

export interface NodePosition {
  name: string;
  column: number;
  row: number;
}

/** Services in columns by their longest call path from a root (cycles cut). */
export function layoutTopology(services: string[], edges: ServiceEdge[]): NodePosition[] {
  const depth = new Map(services.map((s) => [s, 0]));
  // Bellman-Ford style relaxation, at most |services| rounds, so a cycle cannot loop forever.
  for (let round = 0; round < services.length; round++) {
    let changed = false;
    for (const e of edges) {
      const next = (depth.get(e.caller) ?? 0) + 1;
      if (e.caller !== e.callee && next > (depth.get(e.callee) ?? 0) && next < services.length) {
        depth.set(e.callee, next);
        changed = true;
      }
    }
    if (!changed) {
      break;
    }
  }
  const rows = new Map<number, number>();
  return services.map((name) => {
    const column = depth.get(name) ?? 0;
    const row = rows.get(column) ?? 0;
    rows.set(column, row + 1);
    return { name, column, row };
  });
}

export interface WaterfallRow {
  span: Span;
  depth: number;
  offsetMs: number;
  durationMs: number;
}

/** Spans in tree order (children by start time under their parent), times from the trace start. */
export function waterfall(spans: Span[]): { rows: WaterfallRow[]; totalMs: number } {
  if (spans.length === 0) {
    return { rows: [], totalMs: 0 };
  }
  const start = spans.reduce((m, s) => (s.startNs < m ? s.startNs : m), spans[0].startNs);
  const end = spans.reduce((m, s) => (s.endNs > m ? s.endNs : m), spans[0].endNs);
  const ids = new Set(spans.map((s) => s.spanId));
  const children = new Map<string | null, Span[]>();
  for (const s of spans) {
    const parent = s.parentSpanId !== null && ids.has(s.parentSpanId) ? s.parentSpanId : null;
    children.set(parent, [...(children.get(parent) ?? []), s]);
  }
  const rows: WaterfallRow[] = [];
  const seen = new Set<string>();
  const visit = (parent: string | null, depth: number) => {
    const kids = (children.get(parent) ?? []).sort((a, b) => (a.startNs < b.startNs ? -1 : a.startNs > b.startNs ? 1 : 0));
    for (const s of kids) {
      if (seen.has(s.spanId)) {
        continue;
      }
      seen.add(s.spanId);
      rows.push({ span: s, depth, offsetMs: Number(s.startNs - start) / 1e6, durationMs: Number(s.endNs - s.startNs) / 1e6 });
      visit(s.spanId, depth + 1);
    }
  };
  visit(null, 0);
  return { rows, totalMs: Number(end - start) / 1e6 };
}
