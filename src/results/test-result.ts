/**
 * The one way a TestResult comes to be: from a test's attempts, or for a test that never ran (cancelled
 * before it started, or missing from a merged report). Pure.
 */
import type { Attempt, TestResult } from './model.ts';
import type { JournalDigest } from '../digest/model.ts';
import { TEST_DEFAULTS, type TestSpec } from '../config/test-spec.ts';
import { seconds } from '../util/size.ts';

type SpecPart = Pick<TestSpec, 'name' | 'unit' | 'exitStatus' | 'skipStatus' | 'shouldFail' | 'tags'>;

const expected = (spec: SpecPart): TestResult['expected'] => ({
  exitStatus: spec.exitStatus,
  skipStatus: spec.skipStatus,
  shouldFail: spec.shouldFail,
});

const tenths = (x: number) => Math.round(x * 10) / 10;

/** A test that ran: its last attempt decides, every attempt is kept. */
export function resultFromAttempts(
  spec: SpecPart,
  attempts: Attempt[],
  o: { digest: JournalDigest; files: TestResult['files']; queuedMs: number; rerun: string },
): TestResult {
  const last = attempts[attempts.length - 1];
  if (!last) throw new Error(`resultFromAttempts: ${spec.name} has no attempts`);
  const vm = attempts.reduce((s, a) => s + a.durations.vmSeconds, 0);
  const collect = attempts.reduce((s, a) => s + a.durations.collectSeconds, 0);
  const n = attempts.length;
  return {
    name: spec.name,
    unit: spec.unit,
    status: last.status,
    reason: n > 1 ? `${last.reason} (attempt ${n} of ${n})` : last.reason,
    exitStatus: last.guestStatus,
    expected: expected(spec),
    tags: spec.tags,
    flaky: last.status === 'pass' && attempts.some((a) => a.status === 'fail' || a.status === 'timeout'),
    attempts,
    timings: {
      queuedSeconds: seconds(o.queuedMs),
      vmSeconds: tenths(vm),
      collectSeconds: tenths(collect),
      totalSeconds: tenths(vm + collect),
    },
    files: o.files,
    outputTail: o.digest.unitOutput,
    digest: o.digest,
    rerun: o.rerun,
  };
}

/**
 * A test that never ran: an error with the reason. Only its name may be known (a planned test missing from
 * every shard's results): then its unit and expectations are the defaults.
 */
export function resultNotRun(spec: SpecPart | { name: string }, reason: string, rerun = ''): TestResult {
  const full: SpecPart =
    'unit' in spec
      ? spec
      : {
          name: spec.name,
          unit: `${spec.name}.service`,
          exitStatus: TEST_DEFAULTS.exitStatus,
          skipStatus: TEST_DEFAULTS.skipStatus,
          shouldFail: false,
          tags: [],
        };
  return {
    name: full.name,
    unit: full.unit,
    status: 'error',
    reason,
    exitStatus: null,
    expected: expected(full),
    tags: full.tags,
    flaky: false,
    attempts: [],
    timings: { queuedSeconds: 0, vmSeconds: 0, collectSeconds: 0, totalSeconds: 0 },
    files: {},
    outputTail: [],
    rerun,
  };
}
