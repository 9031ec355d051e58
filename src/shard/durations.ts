/**
 * Known test durations, from an earlier run's results.json (a single run or a merged report). They
 * order the VM pool and balance shards; they are a hint, so a missing or unreadable file is a note,
 * never an error.
 */
import { readFile } from 'node:fs/promises';
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
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return { note: `no durations history at ${path}; ordering by timeout and name` };
  }
  try {
    const r = JSON.parse(text) as Partial<Results>;
    if (!Array.isArray(r.tests)) throw new Error('no "tests" array');
    const durations = durationsFrom(r as Results);
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
