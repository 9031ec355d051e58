/**
 * A red run of 25 tests as a CI job would leave it: 3 failures (one with subtests, one with a failed unit
 * and a coredump), 2 timeouts, 1 error, 2 skips, 17 passes (one flaky, retried), on 2 VM slots, so most
 * tests start well after the first minute. `hours: true` stretches it past an hour (a 70-minute hang).
 * The reporters' tests (summary, JUnit) render from it.
 */
import type { Attempt, Results, Status, TestResult } from '../../src/results/model.ts';
import type { JournalDigest } from '../../src/digest/model.ts';
import { results, testResult } from './results.ts';

export const RED_RUN_START = '2026-11-27T10:00:00.000Z';

export function digestOf(over: Partial<JournalDigest> = {}): JournalDigest {
  return {
    entries: 100,
    unitOutput: [],
    failedUnits: [],
    errors: [],
    coredumps: [],
    sanitizers: [],
    kernel: [],
    emergency: false,
    subtests: [],
    lastLines: [],
    notes: [],
    ...over,
  };
}

interface Plan {
  name: string;
  status: Status;
  seconds: number;
  over?: Partial<TestResult>;
  /** An earlier attempt that failed (a flaky test). */
  retried?: boolean;
}

const PLANS: Plan[] = [
  { name: 'TEST-01-BASIC', status: 'pass', seconds: 35 },
  {
    name: 'TEST-02-NETWORK',
    status: 'fail',
    seconds: 48,
    over: {
      reason: 'exit status 1, expected 123',
      outputTail: ['ping: connect: Network is unreachable', 'TEST-02-NETWORK: step 3 of 5 failed'],
      digest: digestOf({
        subtests: [
          { name: 'link up', result: 'pass', message: 'eth0 carrier' },
          { name: 'dhcp', result: 'pass', message: 'lease 10.0.2.15' },
          { name: 'route', result: 'fail', message: 'no default route\nip route: (empty)' },
        ],
      }),
    },
  },
  { name: 'TEST-03-SKIP', status: 'skip', seconds: 12, over: { reason: 'exit status 77: no TPM' } },
  { name: 'TEST-04-JOURNAL', status: 'pass', seconds: 62 },
  {
    name: 'TEST-05-HANG',
    status: 'timeout',
    seconds: 300,
    over: {
      reason: 'no status after 300 s (timeout)',
      outputTail: ['waiting for udev to settle...'],
      digest: digestOf({ lastLines: ['systemd-udevd[201]: worker timed out', 'kernel: task hung'] }),
    },
  },
  { name: 'TEST-06-UDEV', status: 'pass', seconds: 41, retried: true },
  {
    name: 'TEST-07-CRASH',
    status: 'fail',
    seconds: 55,
    over: {
      reason: 'exit status 134, expected 123',
      outputTail: ['Assertion `p != NULL` failed.', 'Aborted (core dumped)'],
      digest: digestOf({
        failedUnits: [{ unit: 'demo-helper.service', result: 'core-dump' }],
        coredumps: [
          {
            pid: 412,
            comm: 'demo-helper',
            signal: 'SIGABRT',
            exe: '/usr/bin/demo-helper',
            unit: 'demo-helper.service',
            source: 'coredump',
          },
        ],
      }),
    },
  },
  { name: 'TEST-08-MOUNT', status: 'pass', seconds: 28 },
  {
    name: 'TEST-09-BOOT',
    status: 'error',
    seconds: 20,
    over: { reason: 'the VM did not start: qemu exited 1', outputTail: [] },
  },
  { name: 'TEST-10-USERS', status: 'pass', seconds: 33 },
  { name: 'TEST-11-SYSCTL', status: 'pass', seconds: 19 },
  {
    name: 'TEST-12-SLOW',
    status: 'timeout',
    seconds: 180,
    over: { reason: 'no status after 180 s (timeout)' },
  },
  { name: 'TEST-13-TMPFILES', status: 'pass', seconds: 24 },
  { name: 'TEST-14-SKIP-ARM', status: 'skip', seconds: 9, over: { reason: 'exit status 77: x86_64 only' } },
  { name: 'TEST-15-LOGIN', status: 'pass', seconds: 47 },
  {
    name: 'TEST-16-FS',
    status: 'fail',
    seconds: 38,
    over: { reason: 'exit status 2, expected 123', outputTail: ['mkfs.ext4: device busy'] },
  },
  { name: 'TEST-17-TIMERS', status: 'pass', seconds: 26 },
  { name: 'TEST-18-SOCKETS', status: 'pass', seconds: 31 },
  { name: 'TEST-19-DBUS', status: 'pass', seconds: 44 },
  { name: 'TEST-20-RESOLVED', status: 'pass', seconds: 52 },
  { name: 'TEST-21-HOSTNAME', status: 'pass', seconds: 15 },
  { name: 'TEST-22-LOCALE', status: 'pass', seconds: 18 },
  { name: 'TEST-23-PORTABLE', status: 'pass', seconds: 66 },
  { name: 'TEST-24-NSPAWN', status: 'pass', seconds: 58 },
  { name: 'TEST-25-SHUTDOWN', status: 'pass', seconds: 21 },
];

/** Every attempt in order on 2 slots: each starts when the earlier of the two slots frees up. */
export function redRun(o: { hours?: boolean } = {}): Results {
  const t0 = Date.parse(RED_RUN_START);
  const slots = [0, 0];
  const at = (seconds: number) => {
    const i = slots[0]! <= slots[1]! ? 0 : 1;
    const start = slots[i]!;
    slots[i] = start + seconds;
    return start;
  };
  const attempt = (t: TestResult, n: number, status: Status, seconds: number): Attempt => ({
    ...t.attempts[0]!,
    attempt: n,
    status,
    reason: n === 1 && status !== t.status ? 'exit status 1, expected 123' : t.reason,
    startedAt: new Date(t0 + at(seconds) * 1000).toISOString(),
    durations: { vmSeconds: seconds, collectSeconds: 0.5 },
  });
  const tests = PLANS.map((p) => {
    // Stretched: the hang runs for 70 minutes, so the run lasts past the hour.
    const seconds = o.hours && p.name === 'TEST-05-HANG' ? 4200 : p.seconds;
    const t = testResult(p.name, p.status, {
      reason: p.status === 'pass' ? 'exit status 123' : `${p.status} reason`,
      ...p.over,
    });
    t.attempts = p.retried
      ? [attempt(t, 1, 'fail', seconds), attempt(t, 2, p.status, seconds)]
      : [attempt(t, 1, p.status, seconds)];
    t.flaky = p.retried === true;
    const vm = t.attempts.reduce((s, a) => s + a.durations.vmSeconds, 0);
    t.timings = { queuedSeconds: 0, vmSeconds: vm, collectSeconds: 0.5, totalSeconds: vm + 0.5 };
    return t;
  });
  const r = results(tests);
  const end = Math.max(...slots);
  r.startedAt = RED_RUN_START;
  r.finishedAt = new Date(t0 + end * 1000).toISOString();
  r.durationSeconds = end;
  return r;
}
