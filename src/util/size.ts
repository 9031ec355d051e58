const UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** Parses a memory size as mkosi does ("2G", "1536M", "1073741824"); returns bytes, or undefined when invalid. */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value > 0 ? value : undefined;
  const m = /^\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(value);
  if (!m) return undefined;
  const bytes = Number(m[1]) * (UNITS[(m[2] ?? '').toUpperCase()] ?? 1);
  return bytes > 0 ? bytes : undefined;
}

/** Formats bytes the way mkosi accepts them on the command line (whole MiB). */
export function formatMiB(bytes: number): string {
  return `${Math.max(1, Math.round(bytes / 1024 ** 2))}M`;
}

export function humanBytes(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(0)} MiB`;
  return `${bytes} B`;
}

export function seconds(ms: number): number {
  return Math.round(ms / 100) / 10;
}
