import assert from "node:assert/strict";
import { test } from "node:test";
import { jaegerLinks, parseTraceReport } from "../../src/webviews/model/trace";
import { fixture } from "../fixtures";

// What the payload holds is tested where it is built (tests/tracing/test_trace_view.py);
// here: that the view reads it, and refuses what it cannot draw.

test("the fixture parses: nodes, edges, traces and rows with code locations", () => {
  const report = parseTraceReport(fixture("trace-report"));
  assert.deepEqual(report.services, ["gateway", "generator", "retriever"]);
  assert.deepEqual(report.nodes.map((n) => [n.name, n.column, n.row]), [["gateway", 0, 0], ["generator", 1, 0], ["retriever", 1, 1]]);
  assert.equal(report.edges.length, 2);
  assert.equal(report.traces.length, 2);
  assert.equal(report.jaegerUrl, "http://localhost:16686");
  const rows = report.trace!.rows;
  assert.deepEqual(rows[0].location, { path: "services/gateway.py", line: 21, function: "chat" });
  assert.deepEqual(rows[1].location, { path: "services/retriever.py", line: 14, function: "search" });
  assert.equal(rows[2].location, null);
  assert.equal(rows[1].locationText, "services/retriever.py:14");
  assert.deepEqual(rows[1].attributes[1], ["code.filepath", "services/retriever.py"]);
});

test("malformed trace reports name the field", () => {
  const report = fixture("trace-report");
  assert.throws(() => parseTraceReport({ ...report, edges: "x" }), /traceReport\.edges is not a list/);
  const badId = structuredClone(report);
  badId.trace.rows[1].span_id = "ABC";
  assert.throws(() => parseTraceReport(badId), /traceReport\.trace\.rows\[1\]\.span_id is not 16 lowercase hex digits/);
  const badTime = structuredClone(report);
  badTime.trace.rows[0].offset_ms = "soon";
  assert.throws(() => parseTraceReport(badTime), /traceReport\.trace\.rows\[0\]\.offset_ms is not a duration in ms/);
  const badLine = structuredClone(report);
  badLine.trace.rows[0].location.line = 0;
  assert.throws(() => parseTraceReport(badLine), /traceReport\.trace\.rows\[0\]\.location\.line is not a line number/);
  const badPair = structuredClone(report);
  badPair.trace.rows[0].attributes[0] = ["k", { stringValue: "v" }];
  assert.throws(() => parseTraceReport(badPair), /traceReport\.trace\.rows\[0\]\.attributes\[0\] is not a \[key, text\] pair/);
  assert.equal(parseTraceReport({ ...report, jaeger_url: "javascript:alert(1)" }).jaegerUrl, null);
});

test("a payload of another version is refused, naming the mismatch", () => {
  const report = fixture("trace-report");
  assert.throws(() => parseTraceReport({ ...report, version: 2 }), /traceReport\.version is 2, not 1/);
  assert.throws(() => parseTraceReport({ services: [], edges: [], traces: [], trace: null }), /traceReport\.version is undefined/);
});

test("Open in Jaeger opens only the links the report carries, http(s) only", () => {
  const report = fixture("trace-report");
  const links = jaegerLinks(parseTraceReport(report));
  assert.equal(links.get("4bf92f3577b34da6a3ce929d0e0e4736"), "http://localhost:16686/trace/4bf92f3577b34da6a3ce929d0e0e4736");
  assert.equal(links.get("5b8efff798038103d269b633813fc60c"), "http://localhost:16686/trace/5b8efff798038103d269b633813fc60c");
  const hostile = structuredClone(report);
  hostile.traces[1].jaeger_url = "javascript:alert(1)";
  hostile.trace.jaeger_url = null;
  hostile.traces[0].jaeger_url = null;
  assert.equal(jaegerLinks(parseTraceReport(hostile)).size, 0);
});
