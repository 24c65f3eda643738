// Sizes are bytes until they are shown; shown with binary units, as memlens.units does.

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** `1536` → `"1.5 KiB"` (same text as memlens.units.format_bytes). */
export function formatBytes(bytes: number): string {
  if (bytes < 0) {
    return "-" + formatBytes(-bytes);
  }
  let value = bytes;
  for (const unit of UNITS) {
    if (value < 1024 || unit === UNITS[UNITS.length - 1]) {
      return unit === "B" ? `${Math.round(bytes)} B` : `${value.toFixed(1)} ${unit}`;
    }
    value /= 1024;
  }
  throw new Error("unreachable");
}

export function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
}

/** A data error: the message names the field so that whoever sent it can fix it. */
export class ReportError extends Error {}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function field(record: Record<string, unknown>, key: string, where: string): unknown {
  if (!(key in record)) {
    throw new ReportError(`${where}.${key} is missing`);
  }
  return record[key];
}

export function bytesField(record: Record<string, unknown>, key: string, where: string): number {
  const value = field(record, key, where);
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new ReportError(`${where}.${key} is not a byte count: ${JSON.stringify(value)}`);
  }
  return value;
}

export function stringField(record: Record<string, unknown>, key: string, where: string): string {
  const value = field(record, key, where);
  if (typeof value !== "string") {
    throw new ReportError(`${where}.${key} is not a string`);
  }
  return value;
}

export function arrayField(record: Record<string, unknown>, key: string, where: string): unknown[] {
  const value = field(record, key, where);
  if (!Array.isArray(value)) {
    throw new ReportError(`${where}.${key} is not a list`);
  }
  return value;
}

export function recordAt(value: unknown, where: string): Record<string, unknown> {
  if (!isRecord(value)) {
    throw new ReportError(`${where} is not an object`);
  }
  return value;
}
