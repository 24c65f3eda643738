// Field readers for the payloads the server sends: each error names the bad field.

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

export function booleanField(record: Record<string, unknown>, key: string, where: string): boolean {
  const value = field(record, key, where);
  if (typeof value !== "boolean") {
    throw new ReportError(`${where}.${key} is not true or false`);
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
