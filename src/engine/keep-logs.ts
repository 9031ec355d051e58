import { rm } from 'node:fs/promises';
import type { TestResult } from '../results/model.ts';

/** --keep failed: logs of passing and skipped tests go; everything of the others stays. */
export async function dropPassingLogs(tests: TestResult[]): Promise<void> {
  for (const t of tests) {
    if (t.status !== 'pass' && t.status !== 'skip') continue;
    for (const a of t.attempts) {
      if (a.status === 'pass' || a.status === 'skip') {
        for (const f of [a.files.journal, a.files.console]) if (f) await rm(f, { force: true });
        a.files = {};
      }
    }
    t.files = t.attempts[t.attempts.length - 1]?.files ?? {};
  }
}
