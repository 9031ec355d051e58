/**
 * --repeat: one TestResult per test out of its runs, so that every reader of results.json keeps working.
 * The result is the test's first failed run (its reason, logs and digest explain the failure), else its
 * last; `repeats` says how every run ended. Pure.
 */
import { failedTests, type TestResult } from './model.ts';

/** The rounds' results (each round: the whole selection once), merged per test in the first round's order. */
export function mergeRepeats(rounds: TestResult[][]): TestResult[] {
  const first = rounds[0] ?? [];
  if (rounds.length <= 1) return first;
  return first.map((t) => {
    const runs = rounds.map((r) => r.find((x) => x.name === t.name)).filter((x) => x !== undefined);
    const failedRun = runs.findIndex((x) => failedTests({ tests: [x] }).length > 0);
    const k = failedRun >= 0 ? failedRun : runs.length - 1;
    const chosen = runs[k]!;
    const statuses = runs.map((x) => x.status);
    const passed = statuses.filter((s) => s === 'pass').length;
    return {
      ...chosen,
      reason: `${chosen.reason} (run ${k + 1} of ${runs.length}; ${passed}/${runs.length} passed)`,
      repeats: { runs: runs.length, passed, statuses },
    };
  });
}
