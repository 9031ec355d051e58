/**
 * Benchmark 2: the engine's VM pool with 24 stand-in workloads of skewed durations on P slots.
 * The real engine (runEngine: plan, host probe, hash, pool, attempt, journal collection, digest, results)
 * runs with the stand-in mkosi test/fixtures/fake-mkosi.mjs in place of mkosi/QEMU: each "VM" burns CPU
 * for a quarter of its duration and sleeps the rest, writes its journal stream and status line to the
 * serial-transport files, and exits. Variants, alternating within each repetition:
 *   FIFO             equal timeouts, no durations: the pool starts tests in manifest order;
 *   known durations  RunConfig.durations from the first FIFO run's results.json (what `itest run
 *                    --durations results.json` passes): longest first;
 *   serial           --jobs 1 (a plain loop), the baseline.
 * Figure: wall / (sum of durations / P). Target: known durations <= 1.10 of ideal and better than FIFO.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runEngine } from '../src/engine/run.ts';
import type { Ui } from '../src/engine/ui.ts';
import type { RunConfig } from '../src/config/run-config.ts';
import { loadDurations, type Durations } from '../src/shard/durations.ts';
import { BENCH_TMP, ROOT, log, median, round, type BenchRow } from './lib.ts';

const FAKE = join(ROOT, 'test/fixtures/fake-mkosi.mjs');

/** Seconds per workload, in manifest order: mostly short, the longest ones late (sum 90 s). */
export const WORKLOADS = [
  2, 3, 1.5, 2.5, 4, 2, 3, 2, 5, 1.5, 2.5, 6, 2, 3, 1, 4, 2, 10, 2.5, 5, 1.5, 8, 2, 14,
] as const;
const name = (i: number) => `W${String(i + 1).padStart(2, '0')}-LOAD`;

/** List scheduling in the given order on `slots` lanes: the makespan an ideal pool with no overhead reaches. */
export function simulate(durations: number[], order: number[], slots: number): number {
  const lanes = new Array<number>(slots).fill(0);
  for (const i of order) {
    const l = lanes.indexOf(Math.min(...lanes));
    lanes[l]! += durations[i]!;
  }
  return Math.max(...lanes);
}

async function writeConfig(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  const units = join(dir, 'mkosi.extra/usr/lib/systemd/system');
  await mkdir(units, { recursive: true });
  await writeFile(join(dir, 'mkosi.conf'), '[Distribution]\nDistribution=debian\n');
  const tests: string[] = [];
  for (let i = 0; i < WORKLOADS.length; i++) {
    await writeFile(join(units, `${name(i)}.service`), '[Service]\nType=oneshot\nExecStart=/bin/true\n');
    tests.push(`  - name: ${name(i)}`);
  }
  // Listed tests keep manifest order; every test has the same timeout, so nothing else orders them.
  await writeFile(
    join(dir, 'itest.yaml'),
    `version: 1\ndefaults:\n  timeout: 100\ntests:\n${tests.join('\n')}\n`,
  );
}

interface VariantRun {
  wall: number;
  poolWall: number;
  starts: string[];
  ok: boolean;
  perTestOverhead: number;
  collect: number;
  /** What `itest run --durations` would read from this run's results.json. */
  durations: Durations;
}

async function runVariant(
  configDir: string,
  imageDir: string,
  slots: number,
  durations: Durations | undefined,
): Promise<VariantRun> {
  const outputDir = await mkdtemp(join(BENCH_TMP, 'sched-out-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    FAKE_MKOSI_SERIAL: '1',
    FAKE_MKOSI_BURN: '0.25',
    FAKE_MKOSI_DURATIONS: JSON.stringify(
      Object.fromEntries(WORKLOADS.map((d, i) => [`${name(i)}.service`, d])),
    ),
  };
  delete env.FAKE_MKOSI_PLAN;
  delete env.FAKE_MKOSI_STATE;
  const cfg: RunConfig = {
    configDir,
    manifestPath: join(configDir, 'itest.yaml'),
    outputDir,
    tests: [],
    tags: [],
    jobs: slots,
    transport: 'serial',
    kvm: 'no',
    keep: 'failed',
    mkosi: [FAKE],
    cacheDir: join(outputDir, 'cache'),
    useCache: false,
    imageDir,
    hashKey: '',
    hashGlobs: [],
    keyPrefix: 'itest-bench',
    invokedAs: 'itest',
    door: 'cli',
    env,
  };
  if (durations) cfg.durations = durations;
  const starts: string[] = [];
  let first = 0;
  let last = 0;
  const ui: Ui = {
    info: () => {},
    warn: () => {},
    planned: () => {},
    testStart: (spec) => {
      if (!first) first = performance.now();
      starts.push(spec.name);
    },
    testEnd: () => (last = performance.now()),
  };
  const t0 = performance.now();
  const out = await runEngine(cfg, ui, new AbortController().signal);
  const wall = (performance.now() - t0) / 1000;
  const nominal = Object.fromEntries(WORKLOADS.map((d, i) => [name(i), d]));
  const over = out.results.tests.map((t) => t.timings.vmSeconds - nominal[t.name]!);
  const collect = out.results.tests.map((t) => t.timings.collectSeconds);
  const ok = out.results.tests.every((t) => t.status === 'pass');
  if (!ok)
    log(
      `scheduling: not every stand-in passed: ${out.results.tests
        .filter((t) => t.status !== 'pass')
        .map((t) => `${t.name} ${t.status} ${t.reason}`)
        .join('; ')}`,
    );
  return {
    wall,
    poolWall: (last - first) / 1000,
    starts,
    ok,
    perTestOverhead: median(over),
    collect: median(collect),
    durations: await durationsOf(out.resultsPath).finally(() =>
      rm(outputDir, { recursive: true, force: true }),
    ),
  };
}

/** Durations the way `itest run --durations results.json` reads them. */
async function durationsOf(resultsPath: string): Promise<Durations> {
  const { durations, note } = await loadDurations(resultsPath);
  if (!durations) throw new Error(`scheduling: ${note}`);
  return durations;
}

export async function benchScheduling(opts: {
  reps: number;
  serialReps: number;
  slots: number;
}): Promise<BenchRow> {
  await mkdir(BENCH_TMP, { recursive: true });
  const configDir = join(BENCH_TMP, 'sched-config');
  await writeConfig(configDir);
  const imageDir = join(BENCH_TMP, 'sched-image');
  await mkdir(imageDir, { recursive: true });
  const P = opts.slots;
  const durs = [...WORKLOADS];
  const sum = durs.reduce((a, b) => a + b, 0);
  const ideal = sum / P;
  const idx = durs.map((_, i) => i);
  const simFifo = simulate(durs, idx, P);
  const simLpt = simulate(
    durs,
    [...idx].sort((a, b) => durs[b]! - durs[a]! || a - b),
    P,
  );
  log(
    `scheduling: ${durs.length} stand-ins, ${sum} s in all, P=${P}: ideal ${ideal.toFixed(1)} s (simulated FIFO ${simFifo} s, longest-first ${simLpt} s)`,
  );

  const runs: Record<'fifo' | 'durations' | 'serial', VariantRun[]> = { fifo: [], durations: [], serial: [] };
  let known: Durations | undefined;
  for (let rep = 0; rep < Math.max(opts.reps, opts.serialReps); rep++) {
    if (rep < opts.reps) {
      const f = await runVariant(configDir, imageDir, P, undefined);
      runs.fifo.push(f);
      log(`scheduling rep ${rep + 1}: FIFO ${f.wall.toFixed(1)} s (${(f.wall / ideal).toFixed(3)} of ideal)`);
      known ??= f.durations;
      const d = await runVariant(configDir, imageDir, P, known);
      runs.durations.push(d);
      log(
        `scheduling rep ${rep + 1}: known durations ${d.wall.toFixed(1)} s (${(d.wall / ideal).toFixed(3)} of ideal)`,
      );
    }
    if (rep < opts.serialReps) {
      const s = await runVariant(configDir, imageDir, 1, undefined);
      runs.serial.push(s);
      log(
        `scheduling rep ${rep + 1}: serial ${s.wall.toFixed(1)} s (${(s.wall / sum).toFixed(3)} of the sum)`,
      );
    }
  }
  const fifo = median(runs.fifo.map((r) => r.wall));
  const dur = median(runs.durations.map((r) => r.wall));
  const serial = median(runs.serial.map((r) => r.wall));
  const ofIdeal = dur / ideal;
  const met = ofIdeal <= 1.1 && dur < fifo;
  const overhead = median(runs.durations.map((r) => r.perTestOverhead));
  const collect = median(runs.durations.map((r) => r.collect));
  const startup = median(runs.durations.map((r) => r.wall - r.poolWall));
  const notes = [
    `${durs.length} stand-ins (${durs.join(', ')} s; sum ${sum} s, longest ${Math.max(...durs)} s) on P=${P} slots; ` +
      `ideal = sum/P = ${ideal.toFixed(1)} s; list scheduling without overhead would take ${simFifo} s in manifest order ` +
      `(${(simFifo / ideal).toFixed(3)}) and ${simLpt} s longest first (${(simLpt / ideal).toFixed(3)})`,
    `A = known durations ${dur.toFixed(1)} s = ${ofIdeal.toFixed(3)} of ideal; FIFO ${fifo.toFixed(1)} s = ${(fifo / ideal).toFixed(3)} of ideal; ` +
      (runs.serial.length
        ? `serial loop (--jobs 1) ${serial.toFixed(1)} s = ${(serial / sum).toFixed(3)} of the sum of durations; `
        : 'serial loop not run; ') +
      `${opts.reps} alternating FIFO/durations repetitions, ${opts.serialReps} serial, medians`,
    `where the time goes: per test, the stand-in's run takes ${overhead.toFixed(2)} s beyond its nominal duration ` +
      `(node start-up of the stand-in, spawning through the process-group wrapper) and collecting it ${collect.toFixed(2)} s ` +
      `(systemd-journal-remote, journalctl --header, the journalctl -o json digest); before the first VM ` +
      `(plan, host probe, hash) and after the last (results, JUnit) ${startup.toFixed(2)} s`,
    `durations in the known-durations runs come from the first FIFO run's results.json ` +
      `(last attempt's vmSeconds, as \`itest run --durations\` reads them)`,
  ];
  if ([...runs.fifo, ...runs.durations, ...runs.serial].some((r) => !r.ok))
    notes.push('some stand-in runs did not pass; see the log');
  return {
    id: 'scheduling',
    benchmark: `2. scheduling, 24 stand-ins, P=${P}`,
    a: { label: 'known durations', seconds: round(dur, 2) },
    b: { label: 'ideal sum/P', seconds: round(ideal, 2) },
    ratio: round(ofIdeal),
    target: '<= 1.10, < FIFO',
    met,
    notes,
    details: {
      slots: P,
      workloads: durs,
      sumSeconds: sum,
      idealSeconds: ideal,
      simulated: { fifo: simFifo, longestFirst: simLpt },
      fifoSeconds: fifo,
      fifoOfIdeal: round(fifo / ideal),
      serialSeconds: serial,
      serialOfSum: round(serial / sum),
      knownDurations: known,
      runs: Object.fromEntries(
        Object.entries(runs).map(([k, v]) => [
          k,
          v.map((r) => ({
            wall: round(r.wall, 2),
            poolWall: round(r.poolWall, 2),
            perTestOverhead: round(r.perTestOverhead),
            collect: round(r.collect),
            starts: r.starts,
          })),
        ]),
      ),
    },
  };
}
