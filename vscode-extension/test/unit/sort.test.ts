import assert from "node:assert/strict";
import { test } from "node:test";
import { sortRows } from "../../media/src/sort";

test("sorting: numbers and text, nulls last, stable", () => {
  const rows = [
    { name: "layers.10", bytes: 5 },
    { name: "layers.2", bytes: null },
    { name: "layers.1", bytes: 5 },
    { name: "embed", bytes: 9 },
  ];
  const bytes = (r: (typeof rows)[number]) => r.bytes;
  const name = (r: (typeof rows)[number]) => r.name;
  assert.deepEqual(sortRows(rows, bytes, true).map((r) => r.name), ["embed", "layers.10", "layers.1", "layers.2"]);
  assert.deepEqual(sortRows(rows, bytes, false).map((r) => r.name), ["layers.10", "layers.1", "embed", "layers.2"]);
  assert.deepEqual(sortRows(rows, name, false).map((r) => r.name), ["embed", "layers.1", "layers.2", "layers.10"]);
});
