/**
 * Known test durations, from an earlier run's results.json (a single run or a merged report). They
 * order the VM pool and balance shards; they are a hint, so a missing or unreadable file is a note,
 * never an error.
 */
import { existsSync } from 'node:fs';
import { readResultsFile } from './load-results.ts';
import type { Results } from '../results/model.ts';

import type { Durations } from '../config/run-config.ts';

export type { Durations };

/** Seconds of the last attempt of each test that really ran (what a run costs when it goes right). */
export function durationsFrom(r: Pick<Results, 'tests'>): Durations {
  const out: Durations = {};
  for (const t of r.tests) {
    const last = t.attempts[t.attempts.length - 1];
    if (last && last.durations.vmSeconds > 0) out[t.name] = last.durations.vmSeconds;
  }
  return out;
}

/**
 * The expected cost of each test: its known duration; an unknown test among known ones gets the
 * longest known duration (so it starts early rather than late); with nothing known, the timeout.
 */
export function expectedSeconds(
  tests: { name: string; timeout: number }[],
  durations: Durations | undefined,
): Map<string, number> {
  const known = Object.values(durations ?? {});
  const fallback = known.length > 0 ? Math.max(...known) : undefined;
  return new Map(tests.map((t) => [t.name, durations?.[t.name] ?? fallback ?? t.timeout]));
}

export async function loadDurations(path: string): Promise<{ durations?: Durations; note: string }> {
  if (!existsSync(path)) return { note: `no durations history at ${path}; ordering by timeout and name` };
  try {
    // Read like any results file: capped in size, checked against the schema (a hint, so never fatal).
    const durations = durationsFrom(await readResultsFile(path));
    return {
      durations,
      note: `durations of ${Object.keys(durations).length} test(s) from ${path}`,
    };
  } catch (e) {
    return {
      note: `ignoring the durations history ${path}: not a results.json (${(e as Error).message})`,
    };
  }
}
