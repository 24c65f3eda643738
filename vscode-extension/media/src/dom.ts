// DOM helpers for the webviews. Data only ever reaches the page through `textContent`
// (never innerHTML) and through CSSOM sizes; no attribute takes a URL from data.

declare function acquireVsCodeApi(): {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
};

export const vscode = acquireVsCodeApi();

// A view survives a window reload: the page keeps the last data message it was sent as its
// webview state, and a restored page (the extension's WebviewPanelSerializer gives it its
// HTML back) posts that message to itself once the view script has subscribed.
window.addEventListener("message", (event: MessageEvent<unknown>) => {
  if (isDataMessage(event.data)) {
    vscode.setState(event.data);
  }
});
const restored = vscode.getState();
if (isDataMessage(restored)) {
  window.postMessage(restored, "*");
}

/** The extension's `report` / `traces` messages (see src/webviews/messages.ts). */
function isDataMessage(data: unknown): boolean {
  const type = typeof data === "object" && data !== null ? (data as { type?: unknown }).type : undefined;
  return type === "report" || type === "traces";
}

type Child = Node | string | null | undefined | false;

/** An element with classes and children; strings become text nodes. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  append(node, children);
  return node;
}

export function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    parent.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }
}

const SVG = "http://www.w3.org/2000/svg";

/** An SVG element; attribute values here are numbers and class names, never data text. */
export function svg(tag: string, attributes: Record<string, string | number>, ...children: Child[]): SVGElement {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) {
    node.setAttribute(key, String(value));
  }
  append(node, children);
  return node as SVGElement;
}

/** Replaces the page's content. */
export function show(...children: Child[]): void {
  const root = document.getElementById("root");
  if (root === null) {
    throw new Error("webview page has no #root");
  }
  root.replaceChildren();
  append(root, children);
}

/** A message in place of the view (empty state or a report that could not be drawn). */
export function notice(title: string, detail: string, className = "notice"): HTMLElement {
  return el("section", className, el("h2", "", title), el("p", "", detail));
}

/** A bar segment `fraction` (0..1) of its track wide. */
export function segment(className: string, fraction: number, title: string): HTMLElement {
  const node = el("span", `bar-segment ${className}`);
  node.style.width = `${Math.max(0, Math.min(1, fraction)) * 100}%`;
  node.title = title;
  return node;
}
