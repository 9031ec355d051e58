/**
 * Benchmark 3: warm start vs cold build of the same config (examples/demo, TEST-02-SKIP, serial, TCG).
 * Each run is a fresh process (bench/warm-one.ts) calling runEngine and cancelling it through the
 * AbortSignal as soon as the first VM is launched (Ui.testStart). Measured from runEngine's start:
 *   cold: manifest, host probe, image key, cache miss in an empty cache directory, `mkosi --force build`,
 *         save into the cache, first VM launched;
 *   warm: the same with the cache directory the cold run just filled (hash + restore + first VM).
 * Alternating cold, warm, cold, warm; medians. Target: warm <= 10 % of cold.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BENCH_TMP, ROOT, log, median, round, timeCommand, type BenchRow } from './lib.ts';

interface One {
  launchedSeconds: number;
  sinceProcessStart: number;
  phases: Record<string, number>;
  image: { cache: string; buildSeconds?: number; restoreSeconds?: number; saveSeconds?: number };
}

async function once(cacheDir: string): Promise<One> {
  const out = await mkdtemp(join(BENCH_TMP, 'warm-out-'));
  try {
    const r = await timeCommand(['node', '--import', 'tsx', join(ROOT, 'bench/warm-one.ts'), cacheDir, out]);
    const line = r.stdout.trim().split('\n').pop() ?? '';
    if (r.code !== 0 || !line.startsWith('{'))
      throw new Error(`warm-one failed (exit ${r.code}): ${r.stderr.slice(-2000)}`);
    const one = JSON.parse(line) as One;
    if (one.launchedSeconds === undefined) throw new Error(`no VM was launched: ${line}`);
    return one;
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

export async function benchWarmStart(opts: { coldReps: number }): Promise<BenchRow> {
  await mkdir(BENCH_TMP, { recursive: true });
  const cold: One[] = [];
  const warm: One[] = [];
  for (let rep = 0; rep < opts.coldReps; rep++) {
    const cacheDir = await mkdtemp(join(BENCH_TMP, 'warm-cache-'));
    try {
      const c = await once(cacheDir);
      if (c.image.cache !== 'miss') throw new Error(`cold run in an empty cache was a ${c.image.cache}`);
      cold.push(c);
      log(
        `warm start rep ${rep + 1}: cold ${c.launchedSeconds.toFixed(2)} s (build ${c.image.buildSeconds} s)`,
      );
      const w = await once(cacheDir);
      if (w.image.cache !== 'hit') throw new Error(`warm run after a build was a ${w.image.cache}`);
      warm.push(w);
      log(`warm start rep ${rep + 1}: warm ${w.launchedSeconds.toFixed(2)} s`);
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
  }
  const a = median(warm.map((w) => w.launchedSeconds));
  const b = median(cold.map((c) => c.launchedSeconds));
  const ph = (xs: One[], k: string) => median(xs.map((x) => x.phases[k] ?? NaN));
  const notes = [
    `examples/demo, first VM of TEST-02-SKIP launched (Ui.testStart), then cancelled; ${opts.coldReps} cold/warm pairs, ` +
      `each cold in an empty itest cache directory (mkosi's own package cache in /var/cache/mkosi stays as the host has it, ` +
      `so cold here is a fast cold), each warm on the cache the cold run filled; medians`,
    `where warm time goes: manifest ${ph(warm, 'planned').toFixed(2)} s, host probe until ` +
      `${ph(warm, 'hostProbed').toFixed(2)} s (mkosi --version, QEMU, journal tools), image key + cache hit until ` +
      `${ph(warm, 'imageReady').toFixed(2)} s, VM launched at ${a.toFixed(2)} s; counted from process start ` +
      `(node + tsx + modules) ${median(warm.map((w) => w.sinceProcessStart)).toFixed(2)} s`,
    `cold: mkosi build ${median(cold.map((c) => c.image.buildSeconds ?? NaN)).toFixed(1)} s, save ` +
      `${median(cold.map((c) => c.image.saveSeconds ?? NaN)).toFixed(2)} s, VM launched at ${b.toFixed(1)} s`,
  ];
  return {
    id: 'warm',
    benchmark: '3. warm start vs cold build',
    a: { label: 'warm', seconds: round(a, 2) },
    b: { label: 'cold', seconds: round(b, 2) },
    ratio: round(a / b),
    target: '<= 0.10',
    met: a / b <= 0.1,
    notes,
    details: { cold, warm },
  };
}
