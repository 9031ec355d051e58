/**
 * `npm run bench`: the benchmarks of issue 6, each a ratio of two things measured in the same run,
 * alternating, medians over repetitions. Prints a table (benchmark, measured A, measured B, ratio, target,
 * met/MISSED, with notes on where the time goes) and writes bench/results/bench-<date>.json.
 *
 *   npm run bench                          all six
 *   npm run bench -- --only hash,scheduling  a selection (engine, scheduling, warm, hash, digest, accel)
 *   npm run bench -- --only systemd-suite    systemd's own tests as a workload (not in the default set)
 *   npm run bench -- --only transports       one test over serial and over vsock-user (not in the default set)
 *   npm run bench -- --only incremental      cold vs incremental image build after a source change (not in the default set)
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { ROOT, log, renderTable, type BenchRow } from './lib.ts';
import { benchConfigHash } from './config-hash.ts';
import { benchScheduling } from './scheduling.ts';
import { benchEngineOverhead } from './engine-overhead.ts';
import { benchWarmStart } from './warm-start.ts';
import { benchDigest } from './digest-row.ts';
import { benchAccelVerdict } from './accel-verdict.ts';
import { benchSystemdSuite } from './systemd-suite.ts';
import { benchTransports } from './transports.ts';
import { benchIncremental } from './incremental.ts';

const ALL = ['engine', 'scheduling', 'warm', 'hash', 'digest', 'accel'] as const;
/** Selectable with --only, not run by default (minutes of real VMs each). */
const EXTRA = ['systemd-suite', 'transports', 'incremental'] as const;
type Id = (typeof ALL)[number] | (typeof EXTRA)[number];

const int = (name: string) => (v: string) => {
  if (!/^\d+$/.test(v) || Number(v) < 1)
    throw new InvalidArgumentError(`${name} must be a whole number >= 1`);
  return Number(v);
};

const program = new Command('bench')
  .description('Benchmarks of itest-action (issue 6); see BENCHMARKS.md')
  .option(
    '--only <ids>',
    `comma-separated selection of ${[...ALL, ...EXTRA].join(', ')} (default: all but ${EXTRA.join(', ')})`,
    (v: string) => {
      const ids = v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      for (const id of ids)
        if (!([...ALL, ...EXTRA] as readonly string[]).includes(id))
          throw new InvalidArgumentError(
            `unknown benchmark "${id}" (known: ${[...ALL, ...EXTRA].join(', ')})`,
          );
      return ids as Id[];
    },
    [...ALL] as Id[],
  )
  .option(
    '--engine-pairs <n>',
    'engine overhead: alternating engine/hand-written VM pairs',
    int('--engine-pairs'),
    3,
  )
  .option(
    '--sched-reps <n>',
    'scheduling: repetitions of the FIFO / known-durations pair',
    int('--sched-reps'),
    3,
  )
  .option(
    '--serial-reps <n>',
    'scheduling: repetitions of the serial loop (--jobs 1, ~100 s each)',
    int('--serial-reps'),
    1,
  )
  .option('--slots <n>', 'scheduling: pool slots P', int('--slots'), 3)
  .option('--cold-reps <n>', 'warm start: cold builds (each followed by a warm start)', int('--cold-reps'), 2)
  .option('--hash-files <n>', 'config hash: files in the generated tree', int('--hash-files'), 20000)
  .option('--hash-reps <n>', 'config hash: repetitions', int('--hash-reps'), 5)
  .option(
    '--digest-entries <n>',
    'journal digest: run bench/digest.ts with this many entries (3 repetitions) instead of reading its latest results file',
    int('--digest-entries'),
  )
  .option(
    '--accel-reps <n>',
    'broken KVM: repetitions of the boot probe and of the VM verdict',
    int('--accel-reps'),
    3,
  )
  .option(
    '--transport-pairs <n>',
    'transports: alternating serial / vsock-user pairs (~2 min of TCG VM each run)',
    int('--transport-pairs'),
    2,
  )
  .option('--output <file>', 'JSON file (default: bench/results/bench-<date>[-<selection>].json)');

program.parse();
const o = program.opts<{
  only: Id[];
  enginePairs: number;
  schedReps: number;
  serialReps: number;
  slots: number;
  coldReps: number;
  hashFiles: number;
  hashReps: number;
  digestEntries?: number;
  accelReps: number;
  transportPairs: number;
  output?: string;
}>();

const started = new Date();
const rows: BenchRow[] = [];
const failures: { id: Id; error: string }[] = [];
const runners: Record<Id, () => Promise<BenchRow | BenchRow[]>> = {
  engine: () => benchEngineOverhead({ pairs: o.enginePairs }),
  scheduling: () => benchScheduling({ reps: o.schedReps, serialReps: o.serialReps, slots: o.slots }),
  warm: () => benchWarmStart({ coldReps: o.coldReps }),
  hash: () => benchConfigHash({ files: o.hashFiles, reps: o.hashReps }),
  digest: () => benchDigest(o.digestEntries !== undefined ? { entries: o.digestEntries } : {}),
  accel: () => benchAccelVerdict({ reps: o.accelReps }),
  'systemd-suite': () => benchSystemdSuite(),
  transports: () => benchTransports({ pairs: o.transportPairs }),
  incremental: () => benchIncremental(),
};
for (const id of [...ALL, ...EXTRA]) {
  if (!o.only.includes(id)) continue;
  log(`--- ${id}`);
  const t0 = performance.now();
  try {
    rows.push(...[await runners[id]()].flat());
  } catch (e) {
    // One broken benchmark does not lose the others' figures.
    failures.push({ id, error: (e as Error).stack ?? String(e) });
    console.error(`benchmark ${id} failed: ${(e as Error).message}`);
  }
  log(`${id} took ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

console.log(`\n${renderTable(rows)}`);
const date = started.toISOString().slice(0, 10);
const suffix = o.only.length === ALL.length ? '' : `-${o.only.join('-')}`;
const out = o.output ?? join(ROOT, 'bench/results', `bench-${date}${suffix}.json`);
await mkdir(join(out, '..'), { recursive: true });
await writeFile(
  out,
  `${JSON.stringify(
    {
      startedAt: started.toISOString(),
      finishedAt: new Date().toISOString(),
      options: o,
      host: {
        cpus: (await import('node:os')).availableParallelism(),
        kernel: (await import('node:os')).release(),
      },
      rows,
      failures,
    },
    null,
    2,
  )}\n`,
);
console.log(`\nwritten: ${out}`);
if (failures.length) process.exitCode = 1;
