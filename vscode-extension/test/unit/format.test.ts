import assert from "node:assert/strict";
import { test } from "node:test";
import { formatBytes } from "../../src/webviews/model/format";

const GIB = 2 ** 30;

test("formatBytes matches memlens.units.format_bytes", () => {
  assert.equal(formatBytes(0), "0 B");
  assert.equal(formatBytes(1023), "1023 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(24 * GIB), "24.0 GiB");
  assert.equal(formatBytes(-2048), "-2.0 KiB");
});
