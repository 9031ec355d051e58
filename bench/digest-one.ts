// Runs one journal digest and prints {seconds, maxRssKiB, entries} as JSON; bench/digest.ts calls it.
import { digestJournal } from '../src/digest/read-journal.ts';

const file = process.argv[2];
if (!file) throw new Error('usage: digest-one.ts JOURNAL');
const t0 = performance.now();
const d = await digestJournal({ journalctl: 'journalctl', file, unit: 'bench.service' });
console.log(
  JSON.stringify({
    seconds: (performance.now() - t0) / 1000,
    maxRssKiB: process.resourceUsage().maxRSS,
    entries: d.entries,
    notes: d.notes,
  }),
);
