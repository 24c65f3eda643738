import assert from "node:assert/strict";
import { test } from "node:test";
import { serverSettings } from "../../src/settings";

const reader = (values: Record<string, unknown>) => (key: string) => values[key];

test("defaults map to the server's settings shape", () => {
  assert.deepEqual(serverSettings(reader({}), true), {
    memoryBudget: null,
    hints: { enabled: true },
    tracing: { enabled: false },
    collector: { port: 4318 },
    jaeger: { url: null },
    training: { devices: 1 },
    trusted: true,
  });
});

test("configured values pass through; untrusted turns tracing off", () => {
  const values = { memoryBudget: "24GiB", "hints.enabled": false, "tracing.enabled": true, "collector.port": 14318, "jaeger.url": "http://localhost:16686/", "training.devices": 8 };
  const trusted = serverSettings(reader(values), true);
  assert.equal(trusted.memoryBudget, "24GiB");
  assert.deepEqual(trusted.hints, { enabled: false });
  assert.deepEqual(trusted.tracing, { enabled: true });
  assert.equal(trusted.collector.port, 14318);
  // as typed: the server strips and checks it (tests/lsp_server/test_settings.py)
  assert.equal(trusted.jaeger.url, "http://localhost:16686/");
  assert.deepEqual(trusted.training, { devices: 8 });
  // not a device count: the server's default
  assert.deepEqual(serverSettings(reader({ "training.devices": 0 }), true).training, { devices: 1 });
  assert.deepEqual(serverSettings(reader({ "training.devices": 2.5 }), true).training, { devices: 1 });
  const untrusted = serverSettings(reader(values), false);
  assert.deepEqual(untrusted.tracing, { enabled: false });
  assert.equal(untrusted.trusted, false);
});
