import assert from "node:assert/strict";
import { test } from "node:test";
import { layoutTopology, parseTraceReport, waterfall, withJaegerUrl } from "../../src/webviews/model/trace";
import { fixture } from "../fixtures";

test("the fixture parses: services, edges, traces, spans with code locations", () => {
  const report = parseTraceReport(fixture("trace-report"));
  assert.deepEqual(report.services, ["gateway", "retriever", "generator"]);
  assert.equal(report.edges.length, 2);
  assert.equal(report.traces.length, 2);
  assert.equal(report.jaegerUrl, "http://localhost:16686");
  const spans = report.trace!.spans;
  assert.deepEqual(spans[0].location, { path: "services/gateway.py", line: 21, function: "chat" });
  // the older code.* attribute names work too
  assert.deepEqual(spans[1].location, { path: "services/retriever.py", line: 14, function: "search" });
  assert.equal(spans[2].location, null);
  assert.equal(spans[0].parentSpanId, null);
});

test("waterfall: tree order, offsets and durations in ms", () => {
  const report = parseTraceReport(fixture("trace-report"));
  const { rows, totalMs } = waterfall(report.trace!.spans);
  assert.deepEqual(rows.map((r) => [r.span.name, r.depth]), [
    ["POST /chat", 0],
    ["GET /search", 1],
    ["sqlite query", 2],
    ["POST /generate", 1],
    ["decode", 2],
  ]);
  assert.ok(Math.abs(totalMs - 48.2) < 1e-6);
  assert.ok(Math.abs(rows[3].offsetMs - 14) < 1e-6);
  assert.ok(Math.abs(rows[3].durationMs - 33.5) < 1e-6);
});

test("orphans and cycles still give every span one row", () => {
  const report = fixture("trace-report");
  const spans = report.trace.spans.map((s: any) => ({ ...s }));
  spans[0].parentSpanId = "1c2d3e4f5a6b7c8d"; // a cycle through the root
  const parsed = parseTraceReport({ ...report, trace: { ...report.trace, spans } });
  const { rows } = waterfall(parsed.trace!.spans);
  assert.ok(rows.length <= spans.length);
  assert.equal(new Set(rows.map((r) => r.span.spanId)).size, rows.length);
});

test("topology columns follow the call depth; cycles terminate", () => {
  const edges = [
    { caller: "gateway", callee: "retriever", calls: 1, errors: 0, p50_ms: 1, p95_ms: 2 },
    { caller: "retriever", callee: "db", calls: 1, errors: 0, p50_ms: 1, p95_ms: 2 },
    { caller: "gateway", callee: "generator", calls: 1, errors: 0, p50_ms: 1, p95_ms: 2 },
    { caller: "db", callee: "gateway", calls: 1, errors: 0, p50_ms: 1, p95_ms: 2 },
  ];
  const nodes = layoutTopology(["gateway", "retriever", "generator", "db"], edges);
  const column = Object.fromEntries(nodes.map((n) => [n.name, n.column]));
  assert.ok(column.retriever > 0 && column.db > column.retriever);
  assert.ok(nodes.every((n) => n.column < 4));
});

test("malformed trace reports name the field", () => {
  const report = fixture("trace-report");
  assert.throws(() => parseTraceReport({ ...report, edges: "x" }), /traceReport\.edges is not a list/);
  const badId = structuredClone(report);
  badId.trace.spans[1].spanId = "ABC";
  assert.throws(() => parseTraceReport(badId), /traceReport\.trace\.spans\[1\]\.spanId is not 16 lowercase hex digits/);
  const badTime = structuredClone(report);
  badTime.trace.spans[0].startTimeUnixNano = "soon";
  assert.throws(() => parseTraceReport(badTime), /startTimeUnixNano is not a count of nanoseconds/);
  assert.equal(parseTraceReport({ ...report, jaeger_url: "javascript:alert(1)" }).jaegerUrl, null);
});

test("the memlens.jaeger.url setting fills in a report's missing Jaeger URL only", () => {
  const report = fixture("trace-report");
  assert.equal(parseTraceReport(withJaegerUrl({ ...report, jaeger_url: null }, "https://j.example")).jaegerUrl, "https://j.example");
  assert.equal(parseTraceReport(withJaegerUrl(report, "https://j.example")).jaegerUrl, "http://localhost:16686");
  assert.equal(parseTraceReport(withJaegerUrl({ ...report, jaeger_url: null }, null)).jaegerUrl, null);
  assert.equal(withJaegerUrl("not a report", "https://j.example"), "not a report");
});
