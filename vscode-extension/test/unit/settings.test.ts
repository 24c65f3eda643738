import assert from "node:assert/strict";
import { test } from "node:test";
import { jaegerBase, jaegerTraceUrl, serverSettings } from "../../src/settings";

const reader = (values: Record<string, unknown>) => (key: string) => values[key];

test("defaults map to the server's settings shape", () => {
  assert.deepEqual(serverSettings(reader({}), true), {
    memoryBudget: null,
    hints: { enabled: true },
    tracing: { enabled: false },
    collector: { port: 4318 },
    jaeger: { url: null },
    trusted: true,
  });
});

test("configured values pass through; untrusted turns tracing off", () => {
  const values = { memoryBudget: "24GiB", "hints.enabled": false, "tracing.enabled": true, "collector.port": 14318, "jaeger.url": "http://localhost:16686/" };
  const trusted = serverSettings(reader(values), true);
  assert.equal(trusted.memoryBudget, "24GiB");
  assert.deepEqual(trusted.hints, { enabled: false });
  assert.deepEqual(trusted.tracing, { enabled: true });
  assert.equal(trusted.collector.port, 14318);
  assert.equal(trusted.jaeger.url, "http://localhost:16686");
  const untrusted = serverSettings(reader(values), false);
  assert.deepEqual(untrusted.tracing, { enabled: false });
  assert.equal(untrusted.trusted, false);
});

test("jaeger links only for http(s) bases and hex trace ids", () => {
  assert.equal(jaegerBase("javascript:alert(1)"), null);
  assert.equal(jaegerBase("ftp://x"), null);
  assert.equal(jaegerBase(""), null);
  const base = jaegerBase("https://jaeger.example.com/ui//");
  assert.equal(base, "https://jaeger.example.com/ui");
  assert.equal(jaegerTraceUrl(base, "4bf92f3577b34da6a3ce929d0e0e4736"), "https://jaeger.example.com/ui/trace/4bf92f3577b34da6a3ce929d0e0e4736");
  assert.equal(jaegerTraceUrl(base, "../../etc"), null);
  assert.equal(jaegerTraceUrl(null, "4bf92f3577b34da6a3ce929d0e0e4736"), null);
});
