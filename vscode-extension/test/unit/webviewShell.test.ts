import assert from "node:assert/strict";
import { test } from "node:test";
import { contentSecurityPolicy, newNonce, pageHtml } from "../../src/webviews/html";
import { parseWebviewMessage } from "../../src/webviews/messages";

test("the CSP allows scripts only with the nonce and resources only from the webview origin", () => {
  const csp = contentSecurityPolicy("https://x.vscode-cdn.net", "abc");
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'nonce-abc'(;|$)/);
  assert.match(csp, /style-src https:\/\/x\.vscode-cdn\.net(;|$)/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
});

test("the page carries the nonce on its only script and escapes attributes", () => {
  const html = pageHtml({ title: 'a"<b>', cspSource: "https://x", scriptUri: "https://x/m.js", styleUri: "https://x/s.css", nonce: "n0" });
  assert.equal(html.match(/<script/g)?.length, 1);
  assert.match(html, /<script nonce="n0" src="https:\/\/x\/m.js"><\/script>/);
  assert.match(html, /<title>a&#34;&#60;b&#62;<\/title>/);
  assert.notEqual(newNonce(), newNonce());
  assert.match(newNonce(), /^[A-Za-z0-9_-]{24}$/);
});

test("webview messages are validated", () => {
  assert.deepEqual(parseWebviewMessage({ type: "openLocation", path: "svc/a.py", line: 3 }), { type: "openLocation", path: "svc/a.py", line: 3 });
  assert.equal(parseWebviewMessage({ type: "openLocation", path: "a.py", line: 0 }), null);
  assert.equal(parseWebviewMessage({ type: "openLocation", path: 5, line: 1 }), null);
  assert.equal(parseWebviewMessage({ type: "openJaeger", traceId: "javascript:alert(1)" }), null);
  assert.deepEqual(parseWebviewMessage({ type: "openTrace", traceId: "4bf92f3577b34da6a3ce929d0e0e4736" }), { type: "openTrace", traceId: "4bf92f3577b34da6a3ce929d0e0e4736" });
  assert.equal(parseWebviewMessage("ready"), null);
  assert.equal(parseWebviewMessage({ type: "eval" }), null);
});
