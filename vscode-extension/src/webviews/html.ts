// The webviews' HTML shell: a strict Content-Security-Policy (no inline code, scripts only
// with this page's nonce, resources only from the extension's media folder).
import { randomBytes } from "node:crypto";

export interface PageParts {
  title: string;
  /** The webview's `cspSource` (the origin its local resources are served from). */
  cspSource: string;
  scriptUri: string;
  styleUri: string;
  nonce: string;
}

export function newNonce(): string {
  return randomBytes(18).toString("base64url");
}

export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `img-src ${cspSource}`,
    `style-src ${cspSource}`,
    `font-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
    "form-action 'none'",
    "base-uri 'none'",
  ].join("; ");
}

function escapeAttribute(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function pageHtml(parts: PageParts): string {
  const attr = escapeAttribute;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${attr(contentSecurityPolicy(parts.cspSource, parts.nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="${attr(parts.styleUri)}">
<title>${attr(parts.title)}</title>
</head>
<body>
<main id="root" aria-live="polite"></main>
<script nonce="${attr(parts.nonce)}" src="${attr(parts.scriptUri)}"></script>
</body>
</html>`;
}
