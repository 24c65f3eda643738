// `make demo`: code-server with the packaged extension on examples/. Prints the URL; stays
// up while a terminal is attached (or MEMLENS_DEMO_WAIT=1), else checks it serves and stops.
import { join } from "node:path";
import { CodeServer, EXTENSION_ROOT, REPO_ROOT } from "./codeServer";

async function main(): Promise<void> {
  const workspace = join(REPO_ROOT, "examples");
  const server = await CodeServer.start({
    home: join(REPO_ROOT, "build", "demo", "code-server"),
    workspace,
    host: process.env.MEMLENS_DEMO_HOST ?? "127.0.0.1",
    port: Number(process.env.MEMLENS_DEMO_PORT ?? 8080),
    settings: { "memlens.memoryBudget": "24GiB" },
  });
  const response = await fetch(server.folderUrl(workspace), { redirect: "manual" });
  if (response.status >= 400) {
    server.stop();
    throw new Error(`code-server answered ${response.status}:\n${server.log()}`);
  }
  const url = server.folderUrl(workspace);
  console.log(`\nmemlens demo: VS Code with the memlens extension on ${workspace}`);
  console.log(`  open ${url}`);
  console.log(`  (extension ${join(EXTENSION_ROOT, "build")}, code-server profile in build/demo/)`);
  const stop = () => {
    server.stop();
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  if (process.stdin.isTTY || process.env.MEMLENS_DEMO_WAIT === "1") {
    console.log("  press Ctrl+C to stop");
    return; // the child keeps the event loop alive
  }
  console.log("  no terminal attached: code-server answered and is stopped again (MEMLENS_DEMO_WAIT=1 keeps it up)");
  stop();
}

main().catch((error) => {
  console.error(`memlens demo: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
