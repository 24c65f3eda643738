// Table sorting: pure UI over the raw cell values the payload carries (bytes as numbers,
// names as text), so the view reorders rows without computing anything it shows.
import type { CellValue } from "../../src/webviews/model/memory";

/** Rows sorted by one column's raw values; nulls last either way; ties keep their order. */
export function sortRows<R>(rows: R[], value: (row: R) => CellValue, descending: boolean): R[] {
  const sign = descending ? -1 : 1;
  return rows
    .map((row, index) => ({ row, index }))
    .sort((a, b) => {
      const x = value(a.row) ?? null;
      const y = value(b.row) ?? null;
      if (x === null || y === null) {
        return x === y ? a.index - b.index : x === null ? 1 : -1;
      }
      const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
      return order === 0 ? a.index - b.index : sign * order;
    })
    .map(({ row }) => row);
}

