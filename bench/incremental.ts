/**
 * Incremental builds (issue 16): examples/incremental (its mkosi.build compiles src/hello.c into the image),
 * copied to a scratch directory, built cold with --incremental into an empty cache, then again after a
 * one-line change to src/hello.c: a miss of the image key, a hit of the base key. Both through the bundled
 * CLI (each run also boots the example's one test under TCG, which is not measured). Figures: mkosi's build
 * time each way (results.json environment.image.buildSeconds) and, from mkosi's own log, how many packages
 * each build fetched and unpacked (apt's `Get:`, `Unpacking`, `Setting up` lines) and whether it reused its
 * cached trees. The restore and save time of the base state against the local Actions-cache stand-in comes
 * with the Actions backend of the base state (issue 16's next step).
 */
import { cp, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Results } from '../src/results/model.ts';
import { BENCH_TMP, ROOT, log, round, timeCommand, type BenchRow } from './lib.ts';

interface BuildRun {
  buildSeconds: number;
  wallSeconds: number;
  aptLines: number;
  reusedCache: boolean;
  base: Results['environment']['image']['base'];
  test: string;
}

async function run(dir: string, cache: string, label: string): Promise<BuildRun> {
  const out = join(dir, `out-${label}`);
  const r = await timeCommand(
    [
      'node',
      join(ROOT, 'dist/cli/index.js'),
      'run',
      '--config',
      '.',
      '--hash-glob',
      'src/**',
      '--incremental',
      '--cache-dir',
      cache,
      '--output',
      out,
      '--transport',
      'serial',
    ],
    { cwd: dir, stdout: 'capture' },
  );
  if (r.code !== 0) throw new Error(`${label} run failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as Results;
  const buildLog = await readFile(join(out, 'image-build.log'), 'utf8');
  return {
    buildSeconds: results.environment.image.buildSeconds ?? NaN,
    wallSeconds: r.seconds,
    aptLines: buildLog.split('\n').filter((l) => /^(Get:\d|Unpacking |Setting up )/.test(l)).length,
    reusedCache: /Copying cached trees/.test(buildLog) && !/Installing Debian/.test(buildLog),
    base: results.environment.image.base,
    test: `${results.tests[0]?.name}: ${results.tests[0]?.status}`,
  };
}

export async function benchIncremental(): Promise<BenchRow> {
  await mkdir(BENCH_TMP, { recursive: true });
  const dir = await mkdtemp(join(BENCH_TMP, 'incremental-'));
  await cp(join(ROOT, 'examples/incremental'), dir, { recursive: true });
  const cache = join(dir, 'cache');
  log('incremental: cold build (empty cache)');
  const cold = await run(dir, cache, 'cold');
  const src = join(dir, 'src/hello.c');
  await writeFile(src, (await readFile(src, 'utf8')).replace('version 1', 'version 2'));
  log('incremental: after a one-line change to src/hello.c');
  const warm = await run(dir, cache, 'incremental');
  const ratio = round(warm.buildSeconds / cold.buildSeconds, 3);
  return {
    id: 'incremental',
    benchmark: 'image build after a one-line source change, incremental vs cold',
    a: { label: 'incremental build', seconds: warm.buildSeconds },
    b: { label: 'cold build', seconds: cold.buildSeconds },
    ratio,
    target: '<= 0.35',
    met: ratio <= 0.35,
    notes: [
      `cold: ${cold.aptLines} apt lines (Get/Unpacking/Setting up), base state ${cold.base?.match ?? '?'}; ` +
        `incremental: ${warm.aptLines} apt lines, base state ${warm.base?.match ?? '?'}, ` +
        `mkosi ${warm.reusedCache ? 'copied its cached trees and installed nothing' : 'did NOT reuse its cached trees'}`,
      `base state kept: ${round((warm.base?.savedBytes ?? 0) / 1024 ** 3, 2)} GiB; runs' wall (build + one TCG VM): ` +
        `${round(cold.wallSeconds, 1)} s and ${round(warm.wallSeconds, 1)} s; tests: ${cold.test}, ${warm.test}`,
      'pending: restore/save of the base state through the Actions cache (issue 16, next step)',
    ],
    details: { cold, incremental: warm, dir },
  };
}
