// The Compress… quick pick: the schemes `memlens/compressOptions` offers for one load
// (memlens/lsp_server/features/compress_options.py), as quick-pick items.

/** One option as the server sends it. */
export interface CompressOption {
  weights: string;
  max_error: number | null;
  label: string;
  bytes: number | null;
  text: string;
  detail: string;
  recommended: boolean;
}

/** The `memlens/compressOptions` result. */
export interface CompressOptions {
  model: string;
  before_text: string;
  options: CompressOption[];
}

/** What `memlens.compress` takes as its third argument. */
export interface CompressChoice {
  weights: string;
  max_error?: number;
}

export interface CompressPickItem {
  label: string;
  description: string;
  detail: string;
  choice: CompressChoice;
}

/** Quick-pick items in the server's order (the recommended one first). */
export function compressPickItems(options: CompressOptions): CompressPickItem[] {
  return options.options.map((o) => ({
    label: o.recommended ? `$(star-full) ${o.label}` : o.label,
    description: o.text,
    detail: o.recommended ? `${o.detail} · recommended` : o.detail,
    choice: o.max_error === null ? { weights: o.weights } : { weights: o.weights, max_error: o.max_error },
  }));
}
