/**
 * Incremental builds (issue 16): examples/incremental (its mkosi.build compiles src/hello.c into the image),
 * copied to a scratch directory, built cold with --incremental into an empty cache, then again after a
 * one-line change to src/hello.c: a miss of the image key, a hit of the base key. Both through the bundled
 * CLI (each run also boots the example's one test under TCG, which is not measured). Figures: mkosi's build
 * time each way (results.json environment.image.buildSeconds) and, from mkosi's own log, how many packages
 * each build fetched and unpacked (apt's `Get:`, `Unpacking`, `Setting up` lines) and whether it reused its
 * cached trees. Then the base state the second build kept goes through the action's backend of it
 * (src/action/github/base-cache.ts: packed by tar, saved to and restored from the real @actions/cache
 * against the local stand-ins, Twirp + Azurite in memory): its save and restore times and sizes.
 */
import { spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Results } from '../src/results/model.ts';
import { GitHubBaseStore } from '../src/action/github/base-cache.ts';
import { ActionsServices } from '../test/helpers/actions-services.ts';
import { treeBytes } from '../src/util/tree-bytes.ts';
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

interface CacheFigures {
  saveSeconds: number;
  restoreSeconds: number;
  archiveBytes: number;
  stateBytes: number;
  restoredBytes: number;
  match: string;
}

/** The base state `state` (key, prefix) saved and restored through the Actions backend, on local services. */
async function throughActionsCache(
  state: string,
  key: string,
  prefix: string,
  scratch: string,
): Promise<CacheFigures> {
  const services = new ActionsServices();
  await services.start();
  const restoreEnv = services.useInProcess({ GITHUB_WORKSPACE: scratch, RUNNER_TEMP: scratch });
  try {
    const root = join(scratch, 'itest-base');
    const policy = { allowed: true, why: 'bench' };
    const warn = (w: string) => log(`incremental: warning: ${w}`);
    // Job 1 finds nothing, then keeps what the build left (here: the local state, copied in).
    const first = new GitHubBaseStore(root, policy, warn, { runTag: 'bench' });
    const fresh = await first.restore(key, prefix);
    await rm(fresh.dir, { recursive: true, force: true });
    const copy = spawnSync('cp', ['-a', '--reflink=auto', state, fresh.dir]);
    if (copy.status !== 0) throw new Error(`cp -a ${state}: ${copy.stderr}`);
    const stateBytes = await treeBytes(fresh.dir);
    const kept = await first.save(key);
    if (kept.skipped) throw new Error(`not saved: ${kept.skipped}`);
    // Job 2 on a fresh runner: restores it.
    await rm(root, { recursive: true, force: true });
    const second = new GitHubBaseStore(root, policy, warn);
    const back = await second.restore(key, prefix);
    return {
      saveSeconds: kept.seconds ?? NaN,
      restoreSeconds: back.seconds ?? NaN,
      archiveBytes: kept.bytes,
      stateBytes,
      restoredBytes: back.bytes,
      match: back.match,
    };
  } finally {
    await services.stop();
    restoreEnv();
  }
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
  log('incremental: the kept base state through the Actions cache (local stand-ins)');
  const base = warm.base!;
  const gh = await throughActionsCache(
    join(cache, 'base', base.key),
    base.key,
    base.key.replace(/[0-9a-f]{32}$/, ''),
    await mkdtemp(join(dir, 'runner-')),
  );
  const gib = (b: number) => round(b / 1024 ** 3, 2);
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
      `Actions cache (real @actions/cache, local Twirp stand-in + Azurite in memory): save ${gh.saveSeconds} s ` +
        `(tar of ${gib(gh.archiveBytes)} GiB, zstd, upload), restore ${gh.restoreSeconds} s ` +
        `(download, unzstd, member check, untar: ${gib(gh.restoredBytes)} GiB back of ${gib(gh.stateBytes)}, match ${gh.match})`,
    ],
    details: { cold, incremental: warm, actionsCache: gh, dir },
  };
}
