/**
 * One test's result the way `meson test` reads it (mesonbuild/mtest.py): the exit status of the exitcode
 * protocol, or TAP for `protocol: 'tap'`. Pure.
 *
 * exitcode: 0 pass, 77 skip, 99 "hard error" (meson's ERROR), anything else fail. A timeout of the test's
 * own (itest ended the VM) is a fail, exit 1: meson's TIMEOUT is for the runs meson itself had to kill.
 * An error (the host not ready, the image not built, no status from the guest, the VM died, cancelled) is
 * the infrastructure's, not the test's: 99.
 *
 * tap: meson counts any non-zero exit of a TAP test as ERROR, so the verdict is in the TAP stream and the
 * exit is 0, except for an error: `Bail out!` and 99. A skipped test is the plan `1..0 # SKIP`.
 */
import type { Subtest } from '../digest/model.ts';
import type { Status, TestResult } from './model.ts';
import { failureBlock } from './terminal.ts';

export const MESON_EXIT = { pass: 0, fail: 1, skip: 77, error: 99 } as const;

/** The exitcode protocol's status for a result (or for no result at all: an error). */
export function mesonExitCode(status: Status | undefined): number {
  switch (status) {
    case 'pass':
      return MESON_EXIT.pass;
    case 'skip':
      return MESON_EXIT.skip;
    case 'fail':
    case 'timeout':
      return MESON_EXIT.fail;
    default:
      return MESON_EXIT.error;
  }
}

/** Exit status with --tap: the stream carries pass, fail and skip; only an error is the exit's to say. */
export function mesonTapExitCode(status: Status | undefined): number {
  return status === undefined || status === 'error' ? MESON_EXIT.error : MESON_EXIT.pass;
}

/** TAP descriptions are one line, and `#` starts a directive. */
const desc = (s: string) => s.replace(/[\r\n]+/g, ' ').replace(/#/g, '\\#');

function subtestPoint(n: number, s: Subtest): string[] {
  const r = s.result.toLowerCase();
  if (/^(pass|passed|ok|success)$/.test(r)) return [`ok ${n} - ${desc(s.name)}`];
  if (/^(skip|skipped)$/.test(r))
    return [`ok ${n} - ${desc(s.name)} # SKIP${s.message ? ` ${desc(s.message)}` : ''}`];
  const out = [`not ok ${n} - ${desc(s.name)}`];
  if (s.message)
    out.push(
      '  ---',
      `  message: ${JSON.stringify(s.message)}`,
      `  result: ${JSON.stringify(s.result)}`,
      '  ...',
    );
  return out;
}

/**
 * The test as TAP 14: its subtests (from the journal's subtest records), then one point for the test as a
 * whole, so that a timeout or a failure outside every subtest is a `not ok` too. The failure block follows
 * as comments. An error is a `Bail out!`.
 */
export function renderTap(t: TestResult | undefined, name: string, why?: string): string[] {
  const out = ['TAP version 14'];
  if (!t || t.status === 'error') {
    out.push(`Bail out! ${desc(t ? `${name}: ${t.reason}` : `${name}: ${why ?? 'no result'}`)}`);
    if (t) out.push(...failureBlock(t).map((l) => `# ${l}`.trimEnd()));
    return out;
  }
  const subtests = t.digest?.subtests ?? [];
  if (t.status === 'skip' && subtests.length === 0) {
    out.push(`1..0 # SKIP ${desc(t.reason)}`);
    return out;
  }
  out.push(`1..${subtests.length + 1}`);
  subtests.forEach((s, i) => out.push(...subtestPoint(i + 1, s)));
  const n = subtests.length + 1;
  if (t.status === 'pass') out.push(`ok ${n} - ${desc(t.name)}`);
  else if (t.status === 'skip') out.push(`ok ${n} - ${desc(t.name)} # SKIP ${desc(t.reason)}`);
  else {
    out.push(
      `not ok ${n} - ${desc(t.name)}`,
      '  ---',
      `  status: ${t.status}`,
      `  message: ${JSON.stringify(t.reason)}`,
      '  ...',
    );
    out.push(...failureBlock(t).map((l) => `# ${l}`.trimEnd()));
  }
  return out;
}
