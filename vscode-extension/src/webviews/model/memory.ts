// `memlens/memoryReport` JSON → what the memory view draws: total bars against the budget,
// a group of bars per layer, and the table's rows. Pure: tested without a browser.
import {
  ReportError,
  arrayField,
  bytesField,
  field,
  formatBytes,
  formatPercent,
  optionalNumber,
  recordAt,
  stringField,
  stringList,
} from "./format";

export type SegmentKind = "weights" | "kv" | "activations" | "measured" | "before" | "after";

export interface Bar {
  label: string;
  segments: { kind: SegmentKind; bytes: number }[];
}

export interface LayerGroup {
  name: string;
  bars: Bar[];
}

export type CellValue = string | number | null;

export interface Column {
  key: string;
  title: string;
  format: "text" | "bytes" | "count" | "percent";
}

export interface MemoryView {
  title: string;
  subtitle: string;
  figures: [string, string][];
  totals: Bar[];
  budget: number | null;
  layers: LayerGroup[];
  columns: Column[];
  rows: Record<string, CellValue>[];
  notes: string[];
}

/** The view of one notification `{command, arguments, report}` (or a bare report). */
export function memoryView(message: unknown, budget: number | null): MemoryView {
  const outer = recordAt(message, "memoryReport");
  const report = recordAt("report" in outer ? outer.report : outer, "report");
  const kind = stringField(report, "kind", "report");
  const build = BUILDERS[kind];
  if (build === undefined) {
    throw new ReportError(`report.kind "${kind}" is not one of ${Object.keys(BUILDERS).join(", ")}`);
  }
  return { ...build(report), budget };
}

type Builder = (report: Record<string, unknown>) => Omit<MemoryView, "budget">;

const BUILDERS: Record<string, Builder> = {
  profile: profileView,
  estimate: estimateView,
  compress: compressView,
};

interface EstimateLayer {
  name: string;
  kind: string;
  params: number;
  weights: number;
  kv: number;
  activations: number;
  tiedTo: string | null;
}

interface Estimate {
  model: string;
  dtype: string;
  total: number;
  weights: number;
  kv: number;
  activations: number;
  exact: boolean;
  source: string;
  layers: EstimateLayer[];
  notes: string[];
}

function parseEstimate(value: unknown, where: string): Estimate {
  const e = recordAt(value, where);
  const dtype = stringField(e, "dtype", where);
  const layers = arrayField(e, "layers", where).map((raw, i) => {
    const at = `${where}.layers[${i}]`;
    const layer = recordAt(raw, at);
    const byDtype = recordAt(field(layer, "bytes_by_dtype", at), `${at}.bytes_by_dtype`);
    const weights = dtype in byDtype ? bytesField(byDtype, dtype, `${at}.bytes_by_dtype`) :
      Object.keys(byDtype).reduce((sum, key) => sum + bytesField(byDtype, key, `${at}.bytes_by_dtype`), 0);
    return {
      name: stringField(layer, "name", at),
      kind: typeof layer.kind === "string" ? layer.kind : "",
      params: bytesField(layer, "params", at),
      weights,
      kv: optionalNumber(layer, "kv_cache_bytes", at) ?? 0,
      activations: optionalNumber(layer, "activation_bytes", at) ?? 0,
      tiedTo: typeof layer.tied_to === "string" ? layer.tied_to : null,
    };
  });
  const sum = (key: "weights" | "kv" | "activations") => layers.reduce((s, l) => s + l[key], 0);
  return {
    model: stringField(e, "model", where),
    dtype,
    total: bytesField(e, "total_bytes", where),
    weights: optionalNumber(e, "weight_bytes", where) ?? sum("weights"),
    kv: optionalNumber(e, "kv_cache_bytes", where) ?? sum("kv"),
    activations: optionalNumber(e, "activations_bytes", where) ?? sum("activations"),
    exact: e.exact === true,
    source: typeof e.source === "string" ? e.source : "analytic",
    layers,
    notes: stringList(e.notes),
  };
}

function stacked(label: string, weights: number, kv: number, activations: number): Bar {
  return {
    label,
    segments: [
      { kind: "weights", bytes: weights },
      { kind: "kv", bytes: kv },
      { kind: "activations", bytes: activations },
    ],
  };
}

const ESTIMATE_COLUMNS: Column[] = [
  { key: "name", title: "Layer", format: "text" },
  { key: "kind", title: "Kind", format: "text" },
  { key: "params", title: "Params", format: "count" },
  { key: "weights", title: "Weights", format: "bytes" },
  { key: "kv", title: "KV cache", format: "bytes" },
  { key: "activations", title: "Activations", format: "bytes" },
  { key: "total", title: "Total", format: "bytes" },
];

function estimateRows(estimate: Estimate): Record<string, CellValue>[] {
  return estimate.layers.map((l) => ({
    name: l.tiedTo ? `${l.name} (tied to ${l.tiedTo})` : l.name,
    kind: l.kind,
    params: l.params,
    weights: l.weights,
    kv: l.kv,
    activations: l.activations,
    total: l.weights + l.kv + l.activations,
  }));
}

/** One block as a profiling run measured it (KV and activations where the worker reports them). */
interface MeasuredLayer {
  weights: number;
  kv: number | null;
  activations: number | null;
}

const MEASURED_COLUMNS: Column[] = [
  { key: "measured", title: "Measured weights", format: "bytes" },
  { key: "measuredKv", title: "Measured KV", format: "bytes" },
  { key: "measuredActivations", title: "Measured activations", format: "bytes" },
];

function estimateLabel(estimate: Estimate): string {
  return `Estimate (${estimate.dtype}, ${estimate.exact ? "exact" : "approximate"}, ${estimate.source})`;
}

function profileView(report: Record<string, unknown>): Omit<MemoryView, "budget"> {
  const estimate = parseEstimate(field(report, "estimate", "report"), "report.estimate");
  const totals = [stacked(estimateLabel(estimate), estimate.weights, estimate.kv, estimate.activations)];
  const measuredByName = new Map<string, MeasuredLayer>();
  const figures: [string, string][] = [["Estimated total", formatBytes(estimate.total)]];
  const rawMeasured = report.measured;
  if (rawMeasured !== null && rawMeasured !== undefined) {
    const measured = recordAt(rawMeasured, "report.measured");
    arrayField(measured, "layers", "report.measured").forEach((raw, i) => {
      const at = `report.measured.layers[${i}]`;
      const layer = recordAt(raw, at);
      measuredByName.set(stringField(layer, "name", at), {
        weights: bytesField(layer, "bytes", at),
        kv: optionalNumber(layer, "kv_cache_bytes", at),
        activations: optionalNumber(layer, "activation_bytes", at),
      });
    });
    const weights = bytesField(measured, "weights_bytes", "report.measured");
    const peak = bytesField(measured, "peak_bytes", "report.measured");
    totals.push(
      { label: "Measured weights", segments: [{ kind: "measured", bytes: weights }] },
      { label: "Measured peak", segments: [{ kind: "measured", bytes: peak }] },
    );
    figures.push(["Measured weights", formatBytes(weights)], ["Measured peak", formatBytes(peak)]);
    if (typeof measured.device === "string") {
      figures.push(["Device", measured.device]);
    }
    const speed = optionalNumber(measured, "decode_tokens_per_s", "report.measured");
    if (speed !== null) {
      figures.push(["Decode speed", `${speed.toFixed(1)} tokens/s`]);
    }
  }
  const hasMeasured = measuredByName.size > 0;
  const layers = estimate.layers.map((l) => {
    const bars = [stacked("estimate", l.weights, l.kv, l.activations)];
    const measured = measuredByName.get(l.name);
    if (measured !== undefined) {
      bars.push({
        label: "measured",
        segments: [
          { kind: "measured", bytes: measured.weights },
          { kind: "kv", bytes: measured.kv ?? 0 },
          { kind: "activations", bytes: measured.activations ?? 0 },
        ],
      });
    }
    return { name: l.name, bars };
  });
  const rows = estimateRows(estimate).map((row, i) => {
    const measured = measuredByName.get(estimate.layers[i].name);
    return hasMeasured
      ? { ...row, measured: measured?.weights ?? null, measuredKv: measured?.kv ?? null, measuredActivations: measured?.activations ?? null }
      : row;
  });
  const columns = hasMeasured ? [...ESTIMATE_COLUMNS, ...MEASURED_COLUMNS] : ESTIMATE_COLUMNS;
  return {
    title: `Profile · ${stringField(report, "model", "report")}`,
    subtitle: hasMeasured ? "measured next to the static estimate" : "estimate only: nothing measured",
    figures,
    totals,
    layers,
    columns,
    rows,
    notes: [...stringList(report.notes), ...estimate.notes],
  };
}

function estimateView(report: Record<string, unknown>): Omit<MemoryView, "budget"> {
  const estimates = arrayField(report, "estimates", "report").map((e, i) =>
    parseEstimate(e, `report.estimates[${i}]`),
  );
  if (estimates.length === 0) {
    throw new ReportError("report.estimates is empty");
  }
  const [first] = estimates;
  return {
    title: `Estimate · ${stringField(report, "model", "report")}`,
    subtitle: `per layer at ${first.dtype}`,
    figures: estimates.map((e) => [`Total ${e.dtype}`, formatBytes(e.total)]),
    totals: estimates.map((e) => stacked(estimateLabel(e), e.weights, e.kv, e.activations)),
    layers: first.layers.map((l) => ({
      name: l.name,
      bars: [stacked(first.dtype, l.weights, l.kv, l.activations)],
    })),
    columns: ESTIMATE_COLUMNS,
    rows: estimateRows(first),
    notes: [...stringList(report.notes), ...first.notes],
  };
}

function compressView(report: Record<string, unknown>): Omit<MemoryView, "budget"> {
  const layers = arrayField(report, "layers", "report").map((raw, i) => {
    const at = `report.layers[${i}]`;
    const layer = recordAt(raw, at);
    return {
      name: stringField(layer, "name", at),
      scheme: typeof layer.scheme === "string" ? layer.scheme : "",
      before: bytesField(layer, "bytes_before", at),
      after: bytesField(layer, "bytes_after", at),
      relError: optionalNumber(layer, "rel_error", at),
    };
  });
  const before = layers.reduce((s, l) => s + l.before, 0);
  const after = layers.reduce((s, l) => s + l.after, 0);
  const config = report.config !== null && typeof report.config === "object" ? (report.config as Record<string, unknown>) : {};
  const figures: [string, string][] = [
    ["Before", formatBytes(before)],
    ["After", formatBytes(after)],
    ["Saved", before > 0 ? `${formatBytes(before - after)} (${formatPercent(1 - after / before)})` : "—"],
  ];
  const pair = (a: string, b: string, unit: string) => {
    const x = optionalNumber(report, a, "report");
    const y = optionalNumber(report, b, "report");
    return x === null || y === null ? "not measured" : `${x.toFixed(2)}${unit} → ${y.toFixed(2)}${unit}`;
  };
  figures.push(["Perplexity", pair("ppl_before", "ppl_after", "")]);
  figures.push(["Tokens/s", pair("tokens_per_s_before", "tokens_per_s_after", "")]);
  const scheme = [config.scheme, config.group_size ? `group ${config.group_size}` : null, config.from ? `from ${config.from}` : null]
    .filter((x) => typeof x === "string" || typeof x === "number")
    .join(", ");
  return {
    title: `Compress · ${stringField(report, "model", "report")}`,
    subtitle: `${scheme || "compression plan"} · ${report.measured === true ? "measured" : "sizes exact, quality not measured"}`,
    figures,
    totals: [
      { label: "Before", segments: [{ kind: "before", bytes: before }] },
      { label: "After", segments: [{ kind: "after", bytes: after }] },
    ],
    layers: layers.map((l) => ({
      name: l.name,
      bars: [
        { label: "before", segments: [{ kind: "before", bytes: l.before }] },
        { label: "after", segments: [{ kind: "after", bytes: l.after }] },
      ],
    })),
    columns: [
      { key: "name", title: "Layer", format: "text" },
      { key: "scheme", title: "Scheme", format: "text" },
      { key: "before", title: "Before", format: "bytes" },
      { key: "after", title: "After", format: "bytes" },
      { key: "saved", title: "Saved", format: "bytes" },
      { key: "relError", title: "Rel. error", format: "percent" },
    ],
    rows: layers.map((l) => ({
      name: l.name,
      scheme: l.scheme,
      before: l.before,
      after: l.after,
      saved: l.before - l.after,
      relError: l.relError,
    })),
    notes: stringList(report.notes),
  };
}

/** Rows sorted by one column; nulls last either way; ties keep their order. */
export function sortRows(
  rows: Record<string, CellValue>[],
  key: string,
  descending: boolean,
): Record<string, CellValue>[] {
  const sign = descending ? -1 : 1;
  return rows
    .map((row, index) => ({ row, index }))
    .sort((a, b) => {
      const x = a.row[key] ?? null;
      const y = b.row[key] ?? null;
      if (x === null || y === null) {
        return x === y ? a.index - b.index : x === null ? 1 : -1;
      }
      const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
      return order === 0 ? a.index - b.index : sign * order;
    })
    .map(({ row }) => row);
}

/** A cell as the table shows it. */
export function formatCell(value: CellValue, format: Column["format"]): string {
  if (value === null) {
    return "—";
  }
  if (typeof value === "string") {
    return value;
  }
  switch (format) {
    case "bytes":
      return formatBytes(value);
    case "percent":
      return formatPercent(value);
    case "count":
      return formatCount(value);
    default:
      return String(value);
  }
}

/** `43_100_000` → `"43.1M"` (memlens.units.format_count). */
export function formatCount(count: number): string {
  for (const [size, unit] of [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "K"]] as const) {
    if (count >= size) {
      return `${(count / size).toFixed(1)}${unit}`;
    }
  }
  return String(count);
}
