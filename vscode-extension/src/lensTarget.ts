// Palette commands act on a model load: the lens line at or nearest the cursor.

export interface LensLine {
  line: number;
  command: string | undefined;
}

/** The line of the `memlens.profile` lens closest to the cursor (ties: the one above). */
export function loadLineNear(lenses: LensLine[], cursorLine: number): number | undefined {
  const lines = lenses.filter((l) => l.command === "memlens.profile").map((l) => l.line);
  let best: number | undefined;
  for (const line of lines) {
    const distance = Math.abs(line - cursorLine);
    const bestDistance = best === undefined ? Infinity : Math.abs(best - cursorLine);
    if (distance < bestDistance || (distance === bestDistance && line < (best ?? Infinity))) {
      best = line;
    }
  }
  return best;
}
