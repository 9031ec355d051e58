import type { RawRun } from '../../src/results/model.ts';

/** A VM run for classification: mkosi exited 0 on serial with a journal, unless `over` says otherwise. */
export const raw = (over: Partial<RawRun> = {}): RawRun => ({
  exitCode: 0,
  signal: null,
  timedOut: false,
  consoleTail: [],
  transport: 'serial',
  durationMs: 1000,
  journalEntries: 500,
  ...over,
});
