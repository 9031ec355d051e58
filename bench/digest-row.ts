/**
 * Benchmark 5 in the table: the journal digest against `journalctl -o json` alone (bench/digest.ts,
 * `npm run bench:digest`). By default its figures are read from the newest bench/results/digest-*.json
 * (a million entries take about 4 minutes a repetition); with `--digest-entries N` bench/digest.ts runs
 * here with N entries and 3 repetitions, and its JSON is kept as digest-<date>-<N>.json beside the others
 * (a same-day digest-<date>.json from a full run is left as it was).
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, log, round, timeCommand, type BenchRow } from './lib.ts';

interface DigestJson {
  entries: number;
  reps: number;
  rows: { name: string; medianSeconds: number; ratioToJournalctl: number; peakRssMiB: number }[];
}

const RESULTS = join(ROOT, 'bench/results');

async function runDigest(entries: number): Promise<{ file: string; json: DigestJson }> {
  const date = new Date().toISOString().slice(0, 10);
  const dated = join(RESULTS, `digest-${date}.json`);
  const previous = existsSync(dated) ? await readFile(dated, 'utf8') : undefined;
  log(`digest: running bench/digest.ts with ${entries} entries, 3 repetitions`);
  const r = await timeCommand([
    'node',
    '--import',
    'tsx',
    join(ROOT, 'bench/digest.ts'),
    String(entries),
    '3',
  ]);
  if (r.code !== 0) throw new Error(`bench/digest.ts failed (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  const file = join(RESULTS, `digest-${date}-${entries}.json`);
  await rename(dated, file);
  if (previous !== undefined) await writeFile(dated, previous);
  return { file, json: JSON.parse(await readFile(file, 'utf8')) as DigestJson };
}

async function latest(): Promise<{ file: string; json: DigestJson }> {
  const names = (await readdir(RESULTS)).filter((f) => /^digest-\d{4}-\d{2}-\d{2}\.json$/.test(f)).sort();
  const name = names.at(-1);
  if (!name)
    throw new Error(
      `no bench/results/digest-<date>.json yet: run npm run bench:digest, or pass --digest-entries`,
    );
  const file = join(RESULTS, name);
  return { file, json: JSON.parse(await readFile(file, 'utf8')) as DigestJson };
}

export async function benchDigest(opts: { entries?: number }): Promise<BenchRow> {
  const { file, json } = opts.entries !== undefined ? await runDigest(opts.entries) : await latest();
  const row = (n: string) => {
    const r = json.rows.find((x) => x.name === n);
    if (!r) throw new Error(`${file}: no row "${n}"`);
    return r;
  };
  const d = row('digest');
  const j = row('journalctl');
  const ratio = d.medianSeconds / j.medianSeconds;
  const met = ratio <= 1.3 && d.peakRssMiB <= 256;
  return {
    id: 'digest',
    benchmark: `5. journal digest, ${json.entries.toLocaleString('en')} entries`,
    a: { label: 'digest', seconds: d.medianSeconds },
    b: { label: 'journalctl -o json', seconds: j.medianSeconds },
    ratio: round(ratio),
    target: '<= 1.3, RSS <= 256 MiB',
    met,
    notes: [
      `${opts.entries !== undefined ? 'measured in this run' : 'read from the latest full run'}: ${file.slice(ROOT.length)} ` +
        `(bench/digest.ts, ${json.reps} alternating repetitions, medians); node's peak RSS ${d.peakRssMiB} MiB ` +
        `(journalctl alone ${j.peakRssMiB} MiB)`,
    ],
    details: { source: file.slice(ROOT.length), entries: json.entries, rows: json.rows },
  };
}
