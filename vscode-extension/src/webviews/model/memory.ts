// The `memlens/memoryReport` payload (built by memlens/lsp_server/memory_view/) and its
// validation: the view draws only a payload that passed, and a bad one names its field.
import {
  ReportError,
  arrayField,
  booleanField,
  bytesField,
  field,
  recordAt,
  stringField,
} from "./format";

/** The payload version the server sends today (memory_view.VERSION). */
export const MEMORY_VIEW_VERSION = 3;
/** The versions this view draws: 3 only added segment kinds (the training report's), so a
 * version-2 payload (a panel restored from state an older server sent) still draws. */
const DRAWN_VERSIONS: readonly unknown[] = [2, MEMORY_VIEW_VERSION];

export const SEGMENT_KINDS = [
  "weights",
  "kv",
  "activations",
  "output",
  "measured",
  "before",
  "after",
  // a training step (version 3)
  "adapters",
  "gradients",
  "optimizer",
  "master",
  "saved",
  "temporaries",
  "transient",
] as const;
export type SegmentKind = (typeof SEGMENT_KINDS)[number];

export interface Segment {
  kind: SegmentKind;
  label: string;
  bytes: number;
  text: string;
}

export interface Bar {
  label: string;
  segments: Segment[];
  total_bytes: number;
  total_text: string;
}

export interface LayerGroup {
  name: string;
  bars: Bar[];
}

export interface Figure {
  label: string;
  text: string;
}

export interface LegendItem {
  kind: SegmentKind;
  label: string;
}

export interface Budget {
  bytes: number;
  text: string;
  exceeded: boolean;
}

export interface Column {
  key: string;
  title: string;
  numeric: boolean;
}

export type CellValue = string | number | null;

/** A raw value (what sorting compares) and the text the table shows. */
export interface Cell {
  value: CellValue;
  text: string;
}

export interface MemoryView {
  version: number;
  title: string;
  subtitle: string;
  figures: Figure[];
  legend: LegendItem[];
  totals: Bar[];
  budget: Budget | null;
  layers: LayerGroup[];
  columns: Column[];
  rows: Record<string, Cell>[];
  /** The rows grouped by layer kind; empty when grouping would not shorten the table. */
  summary_rows: Record<string, Cell>[];
  /** The folder a compression wrote its checkpoint to, else null. */
  checkpoint: string | null;
  notes: string[];
}

/** The payload as the view draws it, or a ReportError naming the first bad field. */
export function parseMemoryView(payload: unknown): MemoryView {
  const view = recordAt(payload, "view");
  const version = field(view, "version", "view");
  if (!DRAWN_VERSIONS.includes(version)) {
    throw new ReportError(`view.version ${JSON.stringify(version)} is not ${DRAWN_VERSIONS.join(" or ")}: update the memlens extension or server`);
  }
  const columns = listAt(view, "columns", "view", (c, at) => ({
    key: stringField(c, "key", at),
    title: stringField(c, "title", at),
    numeric: booleanField(c, "numeric", at),
  }));
  const budget = field(view, "budget", "view");
  const parseRow = (row: Record<string, unknown>, at: string) =>
    Object.fromEntries(columns.map((c) => [c.key, parseCell(field(row, c.key, at), `${at}.${c.key}`)]));
  const checkpoint = field(view, "checkpoint", "view");
  if (checkpoint !== null && typeof checkpoint !== "string") {
    throw new ReportError("view.checkpoint is not a string or null");
  }
  return {
    version: version as number,
    title: stringField(view, "title", "view"),
    subtitle: stringField(view, "subtitle", "view"),
    figures: listAt(view, "figures", "view", (f, at) => ({ label: stringField(f, "label", at), text: stringField(f, "text", at) })),
    legend: listAt(view, "legend", "view", (item, at) => ({ kind: kindField(item, at), label: stringField(item, "label", at) })),
    totals: listAt(view, "totals", "view", parseBar),
    budget:
      budget === null
        ? null
        : ((b: Record<string, unknown>) => ({
            bytes: bytesField(b, "bytes", "view.budget"),
            text: stringField(b, "text", "view.budget"),
            exceeded: booleanField(b, "exceeded", "view.budget"),
          }))(recordAt(budget, "view.budget")),
    layers: listAt(view, "layers", "view", (g, at) => ({ name: stringField(g, "name", at), bars: listAt(g, "bars", at, parseBar) })),
    columns,
    rows: listAt(view, "rows", "view", parseRow),
    summary_rows: listAt(view, "summary_rows", "view", parseRow),
    checkpoint,
    notes: arrayField(view, "notes", "view").map((n, i) => {
      if (typeof n !== "string") {
        throw new ReportError(`view.notes[${i}] is not a string`);
      }
      return n;
    }),
  };
}

function listAt<T>(record: Record<string, unknown>, key: string, where: string, parse: (item: Record<string, unknown>, at: string) => T): T[] {
  return arrayField(record, key, where).map((raw, i) => {
    const at = `${where}.${key}[${i}]`;
    return parse(recordAt(raw, at), at);
  });
}

function parseBar(bar: Record<string, unknown>, at: string): Bar {
  return {
    label: stringField(bar, "label", at),
    segments: listAt(bar, "segments", at, (s, where) => ({
      kind: kindField(s, where),
      label: stringField(s, "label", where),
      bytes: bytesField(s, "bytes", where),
      text: stringField(s, "text", where),
    })),
    total_bytes: bytesField(bar, "total_bytes", at),
    total_text: stringField(bar, "total_text", at),
  };
}

function parseCell(raw: unknown, at: string): Cell {
  const cell = recordAt(raw, at);
  const value = field(cell, "value", at);
  if (value !== null && typeof value !== "string" && !(typeof value === "number" && Number.isFinite(value))) {
    throw new ReportError(`${at}.value is not a string, number or null: ${JSON.stringify(value)}`);
  }
  return { value, text: stringField(cell, "text", at) };
}

function kindField(record: Record<string, unknown>, where: string): SegmentKind {
  const kind = stringField(record, "kind", where);
  if (!(SEGMENT_KINDS as readonly string[]).includes(kind)) {
    throw new ReportError(`${where}.kind "${kind}" is not one of ${SEGMENT_KINDS.join(", ")}`);
  }
  return kind as SegmentKind;
}

