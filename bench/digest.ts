/**
 * Benchmark (not a test): the journal digest against `journalctl -o json` alone on the same generated
 * journal of >= 1,000,000 entries, alternating, medians of several repetitions. Prints a table and
 * writes bench/results/digest-<date>.json.  Usage: npm run bench:digest [-- ENTRIES REPS]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, statSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { digestArgv } from '../src/digest/read-journal.ts';

const ENTRIES = Number(process.argv[2] ?? 1_000_000);
const REPS = Number(process.argv[3] ?? 3);
const REMOTE = ['/usr/lib/systemd/systemd-journal-remote', '/lib/systemd/systemd-journal-remote'].find(
  existsSync,
)!;
const ROOT = new URL('..', import.meta.url).pathname;

async function generate(file: string): Promise<void> {
  const exp = `${file}.export`;
  const out = createWriteStream(exp);
  const units = ['bench.service', 'systemd-udevd.service', 'init.scope', 'foo.service'];
  for (let i = 0; i < ENTRIES; i++) {
    const unit = units[i % units.length]!;
    const prio = i % 997 === 0 ? 3 : 6;
    const text =
      `__CURSOR=s=1;i=${i + 1}\n__REALTIME_TIMESTAMP=${1700000000000000 + i}\n__MONOTONIC_TIMESTAMP=${1000000 + i}\n` +
      `_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=bench\n_SYSTEMD_UNIT=${unit}\nSYSLOG_IDENTIFIER=${unit.split('.')[0]}\n` +
      `PRIORITY=${prio}\n_PID=${100 + (i % 50)}\nMESSAGE=line ${i} of the benchmark journal, with some ordinary log text in it\n\n`;
    if (!out.write(text)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  execFileSync(REMOTE, ['-o', file, exp], { stdio: 'ignore' });
  await rm(exp);
}

/** Runs argv with stdout discarded; wall seconds and the peak RSS (KiB) of the largest process it started. */
function measure(argv: string[]): { seconds: number; maxRssKiB: number; stdout: string } {
  const py =
    'import resource,subprocess,sys,time\nt=time.time()\nr=subprocess.run(sys.argv[1:],stdout=subprocess.PIPE if sys.argv[1]=="node" else subprocess.DEVNULL)\ne=time.time()-t\nsys.stderr.write((r.stdout or b"").decode())\nprint(e, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)';
  const r = spawnSync('python3', ['-c', py, ...argv], { encoding: 'utf8', maxBuffer: 1 << 20 });
  const [s, rss] = r.stdout.trim().split(' ');
  return { seconds: Number(s), maxRssKiB: Number(rss), stdout: r.stderr };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const dir = join(tmpdir(), 'itest-bench');
await mkdir(dir, { recursive: true });
const journal = join(dir, `digest-${ENTRIES}.journal`);
if (!existsSync(journal)) {
  console.log(`generating ${ENTRIES} entries into ${journal} ...`);
  const t0 = performance.now();
  await generate(journal);
  console.log(
    `generated in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${(statSync(journal).size / 1024 ** 2).toFixed(0)} MiB`,
  );
}

// systemd-journal-remote rotates its output (at ~55 MB here): the entries span several files, and
// journalctl expands the glob itself, so every command reads all of them.
const files = journal.replace(/\.journal$/, '*.journal');
const plain = ['journalctl', '--file', files, '--no-pager', '-o', 'json'];
const fields = digestArgv('journalctl', files);
const digest = ['node', '--import', 'tsx', join(ROOT, 'bench/digest-one.ts'), files];
const runs: Record<string, { seconds: number[]; rss: number[] }> = {
  journalctl: { seconds: [], rss: [] },
  'journalctl fields': { seconds: [], rss: [] },
  digest: { seconds: [], rss: [] },
};
let entries = 0;
for (let rep = 0; rep < REPS; rep++) {
  for (const [name, argv] of [
    ['journalctl', plain],
    ['journalctl fields', fields],
    ['digest', digest],
  ] as const) {
    const m = measure([...argv]);
    runs[name]!.seconds.push(m.seconds);
    if (name === 'digest') {
      const inner = JSON.parse(m.stdout) as { maxRssKiB: number; entries: number };
      entries = inner.entries;
      runs[name]!.rss.push(inner.maxRssKiB);
    } else runs[name]!.rss.push(m.maxRssKiB);
  }
}
const base = median(runs.journalctl!.seconds);
const rows = Object.entries(runs).map(([name, r]) => ({
  name,
  medianSeconds: Number(median(r.seconds).toFixed(2)),
  ratioToJournalctl: Number((median(r.seconds) / base).toFixed(2)),
  peakRssMiB: Number((median(r.rss) / 1024).toFixed(0)),
}));
console.log(
  `\njournal: ${ENTRIES} entries (${entries} read by the digest), ${REPS} alternating repetitions, medians`,
);
console.log('what                 seconds  x journalctl  peak RSS MiB');
for (const r of rows)
  console.log(
    `${r.name.padEnd(20)} ${String(r.medianSeconds).padStart(7)}  ${String(r.ratioToJournalctl).padStart(12)}  ${String(r.peakRssMiB).padStart(12)}`,
  );
const d = rows.find((r) => r.name === 'digest')!;
console.log(
  `targets: digest <= 1.3x journalctl -o json: ${d.ratioToJournalctl <= 1.3 ? 'met' : 'MISSED'} (${d.ratioToJournalctl}); RSS <= 256 MiB: ${d.peakRssMiB <= 256 ? 'met' : 'MISSED'} (${d.peakRssMiB} MiB, node's own)`,
);
await mkdir(join(ROOT, 'bench/results'), { recursive: true });
const out = join(ROOT, 'bench/results', `digest-${new Date().toISOString().slice(0, 10)}.json`);
await writeFile(out, `${JSON.stringify({ entries: ENTRIES, reps: REPS, rows, raw: runs }, null, 2)}\n`);
console.log(`written: ${out}`);
