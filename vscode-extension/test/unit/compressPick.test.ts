import assert from "node:assert/strict";
import { test } from "node:test";
import { compressPickItems } from "../../src/compressPick";

test("quick-pick items keep the server's order, star the recommended one and carry the choice", () => {
  const items = compressPickItems({
    model: "HuggingFaceTB/SmolLM2-135M-Instruct",
    before_text: "256.6 MiB",
    options: [
      { weights: "int4:g64", max_error: null, label: "INT4, group 64", bytes: 1, text: "≈ 93.1 MiB (from 256.6 MiB)", detail: "all 210 matrices INT4", recommended: true },
      { weights: "int4:g128", max_error: null, label: "INT4, group 128", bytes: 2, text: "≈ 120.0 MiB (from 256.6 MiB)", detail: "180 of 210 matrices stay INT8: width 576 is not a multiple of 128", recommended: false },
      { weights: "auto", max_error: 0.02, label: "Auto, error ≤ 2%", bytes: null, text: "measured per layer", detail: "per layer …", recommended: false },
    ],
  });
  assert.deepEqual(items.map((i) => i.label), ["$(star-full) INT4, group 64", "INT4, group 128", "Auto, error ≤ 2%"]);
  assert.equal(items[0].detail, "all 210 matrices INT4 · recommended");
  assert.equal(items[1].description, "≈ 120.0 MiB (from 256.6 MiB)");
  assert.deepEqual(items.map((i) => i.choice), [{ weights: "int4:g64" }, { weights: "int4:g128" }, { weights: "auto", max_error: 0.02 }]);
});
