// Bundles the extension (dist/extension.js), the webview scripts (media/*.js) and, with
// --tests, every test file (out/test/**) and the demo (out/scripts/demo.js) with esbuild.
import { build } from "esbuild";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const common = { bundle: true, sourcemap: true, logLevel: "warning", target: "es2022" };

await build({
  ...common,
  entryPoints: ["src/extension.ts"],
  outfile: "dist/extension.js",
  platform: "node",
  format: "cjs",
  external: ["vscode"],
  minify: true,
});
await build({
  ...common,
  entryPoints: { memory: "media/src/memory.ts", trace: "media/src/trace.ts" },
  outdir: "media",
  platform: "browser",
  format: "iife",
  minify: true,
});
if (process.argv.includes("--tests")) {
  const tests = ["unit", "webview", "e2e"].flatMap((dir) =>
    readdirSync(join("test", dir))
      .filter((f) => f.endsWith(".test.ts"))
      .map((f) => join("test", dir, f)),
  );
  tests.push("scripts/demo.ts");
  await build({
    ...common,
    entryPoints: tests,
    outdir: "out",
    outbase: ".",
    platform: "node",
    format: "cjs",
    external: ["vscode", "playwright-core"],
  });
}
