/** Shared pieces of the benchmarks: medians, timing, the row every benchmark returns, and the table. */
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = new URL('..', import.meta.url).pathname;
/** Generated inputs (config trees, journals) live here and are reused between runs. */
export const BENCH_TMP = join(tmpdir(), 'itest-bench');

export const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export const round = (x: number, digits = 3): number => Number(x.toFixed(digits));

/** One line of the table: A is what the target is about, B what it is compared with, ratio = A / B. */
export interface BenchRow {
  id: string;
  benchmark: string;
  a: { label: string; seconds: number };
  b: { label: string; seconds: number };
  ratio: number;
  /** Human-readable target, e.g. "<= 1.03". */
  target: string;
  /** undefined: no verdict (pending, or not measured). */
  met: boolean | undefined;
  /** Where the time goes, what was measured; printed under the table. */
  notes: string[];
  /** Raw figures (every repetition) for the JSON. */
  details: Record<string, unknown>;
}

export function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

/** Runs argv to its end; wall seconds, exit code and captured output. */
export function timeCommand(
  argv: string[],
  opts: {
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    stdout?: 'capture' | 'ignore';
    /** Called for each stdout line with the seconds since the start, as it arrives. */
    onLine?: (line: string, seconds: number) => void;
  } = {},
): Promise<{ seconds: number; code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(argv[0]!, argv.slice(1), {
      env: opts.env ?? process.env,
      cwd: opts.cwd ?? ROOT,
      stdio: ['ignore', opts.stdout === 'ignore' ? 'ignore' : 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let partial = '';
    child.stdout?.on('data', (d: Buffer) => {
      const text = d.toString();
      stdout += text;
      if (!opts.onLine) return;
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) opts.onLine(l, (performance.now() - t0) / 1000);
    });
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ seconds: (performance.now() - t0) / 1000, code, stdout, stderr }));
  });
}

function pad(s: string, w: number, right = false): string {
  return right ? s.padStart(w) : s.padEnd(w);
}

export function renderTable(rows: BenchRow[]): string {
  const verdict = (r: BenchRow) => (r.met === undefined ? 'pending' : r.met ? 'met' : 'MISSED');
  const cells = rows.map((r) => [
    r.benchmark,
    `${r.a.label}: ${r.a.seconds.toFixed(2)} s`,
    `${r.b.label}: ${r.b.seconds.toFixed(2)} s`,
    Number.isFinite(r.ratio) ? r.ratio.toFixed(3) : '-',
    r.target,
    verdict(r),
  ]);
  const head = ['benchmark', 'measured A', 'measured B', 'ratio A/B', 'target', 'verdict'];
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => pad(x, w[i]!, i === 3)).join('  ');
  const out = [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...cells.map(line)];
  for (const r of rows) {
    if (r.notes.length === 0) continue;
    out.push('', `${r.benchmark} (${verdict(r)}):`);
    for (const n of r.notes) out.push(`  - ${n}`);
  }
  return out.join('\n');
}
