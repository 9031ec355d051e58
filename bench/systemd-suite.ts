/**
 * systemd's suite as a workload: the dozen TEST-NN tests of examples/systemd-suite (systemd 257's own
 * integration tests from Debian's systemd-tests package), one real VM each, run by the bundled CLI:
 * `node dist/cli/index.js run --config examples/systemd-suite --kvm no --cache-dir <cache> --output <tmp>`.
 * The image comes from the cache (built there first when it is missing; that build is reported apart).
 *
 * Prints per test: outcome, VM time (+ log collection), reason. Figure: the pool's wall (first VM started
 * to last test collected, from the attempts in results.json, so no image build or host probe in it)
 * against the ideal for the pool size P the engine chose: max(longest test, sum of the tests / P), each
 * test counted as its VM time plus its collection, the time it held a slot. No target of issue 6: the
 * order comes from the manifest's timeouts (no --durations), so the ratio shows what that costs.
 */
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Results } from '../src/results/model.ts';
import { BENCH_TMP, ROOT, log, round, timeCommand, type BenchRow } from './lib.ts';
import { DEFAULT_CACHE } from './engine-overhead.ts';

const CONFIG = join(ROOT, 'examples/systemd-suite');

export interface SuiteRow {
  name: string;
  status: string;
  vmSeconds: number;
  collectSeconds: number;
  queuedSeconds: number;
  attempts: number;
  reason: string;
}

/** First VM start to last collection end, in seconds, from the attempts' start times and durations. */
export function poolWall(r: Pick<Results, 'tests'>): number {
  let first = Infinity;
  let last = -Infinity;
  for (const t of r.tests)
    for (const a of t.attempts) {
      const start = Date.parse(a.startedAt);
      first = Math.min(first, start);
      last = Math.max(last, start + (a.durations.vmSeconds + a.durations.collectSeconds) * 1000);
    }
  return Number.isFinite(first) ? (last - first) / 1000 : NaN;
}

/** max(longest test, sum / P): no schedule on P slots can end sooner. */
export function idealWall(seconds: number[], slots: number): number {
  if (seconds.length === 0 || slots < 1) return NaN;
  return Math.max(Math.max(...seconds), seconds.reduce((a, b) => a + b, 0) / slots);
}

export async function benchSystemdSuite(opts: { cacheDir?: string } = {}): Promise<BenchRow> {
  const cacheDir = opts.cacheDir ?? process.env.ITEST_CACHE_DIR ?? DEFAULT_CACHE;
  await mkdir(BENCH_TMP, { recursive: true });
  const out = await mkdtemp(join(BENCH_TMP, 'systemd-suite-'));
  const argv = [
    'node',
    join(ROOT, 'dist/cli/index.js'),
    'run',
    '--config',
    CONFIG,
    '--kvm',
    'no',
    '--cache-dir',
    cacheDir,
    '--output',
    out,
  ];
  log(`systemd suite: ${argv.slice(2).join(' ')}`);
  const run = await timeCommand(argv, {
    onLine: (line) => {
      // The engine's progress lines ([k/N] start|PASS|FAIL ...), as they come.
      if (/^\[\d+\/\d+\] /.test(line)) log(`systemd suite: ${line}`);
    },
  });
  // 0: all passed, 1: some test did not; anything else is no run of the suite at all.
  if (run.code !== 0 && run.code !== 1)
    throw new Error(
      `systemd suite: itest exited ${run.code}: ${run.stdout.slice(-2000)}${run.stderr.slice(-2000)}`,
    );
  const res = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as Results;
  const rows: SuiteRow[] = res.tests.map((t) => ({
    name: t.name,
    status: t.status,
    vmSeconds: t.timings.vmSeconds,
    collectSeconds: t.timings.collectSeconds,
    queuedSeconds: t.timings.queuedSeconds,
    attempts: t.attempts.length,
    reason: t.reason,
  }));
  const slots = res.environment.jobs;
  const held = rows.map((r) => r.vmSeconds + r.collectSeconds);
  const a = poolWall(res);
  const b = idealWall(held, slots);
  const longest = rows[held.indexOf(Math.max(...held))];
  const img = res.environment.image;
  const w = Math.max(...rows.map((r) => r.name.length));
  const perTest = rows.map(
    (r) =>
      `${r.name.padEnd(w)}  ${r.status.toUpperCase().padEnd(7)} VM ${r.vmSeconds.toFixed(1).padStart(6)} s + collect ` +
      `${r.collectSeconds.toFixed(1)} s${r.attempts > 1 ? ` (${r.attempts} attempts)` : ''}  ${r.reason}`,
  );
  for (const l of perTest) log(`systemd suite: ${l}`);
  const s = res.summary;
  const notes = [
    `examples/systemd-suite, ${rows.length} tests, ${res.environment.accel}, ${res.environment.transport} transport, ` +
      `P=${slots} VMs at once; ${s.pass} passed, ${s.fail} failed, ${s.skip} skipped, ${s.timeout} timed out, ` +
      `${s.error} errors; image ${img.cache}` +
      (img.buildSeconds !== undefined ? ` (built in ${img.buildSeconds} s, not counted)` : '') +
      `; whole CLI run ${run.seconds.toFixed(1)} s`,
    ...perTest,
    `pool wall ${a.toFixed(1)} s (first VM started to last test collected) vs max(longest test ` +
      `${longest ? `${longest.name} ${Math.max(...held).toFixed(1)} s` : '-'}, sum ${held.reduce((x, y) => x + y, 0).toFixed(1)} s / ${slots}) = ` +
      `${b.toFixed(1)} s; order by the manifest's timeouts (no --durations)`,
  ];
  return {
    id: 'systemd-suite',
    benchmark: `systemd's suite, ${rows.length} VMs, P=${slots}`,
    a: { label: 'pool wall', seconds: round(a, 1) },
    b: { label: 'max(longest, sum/P)', seconds: round(b, 1) },
    ratio: round(a / b),
    target: 'none (workload)',
    met: undefined,
    notes,
    details: {
      argv,
      exitCode: run.code,
      cliSeconds: run.seconds,
      output: out,
      environment: res.environment,
      summary: res.summary,
      tests: rows,
    },
  };
}
