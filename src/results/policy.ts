/** Policies applied on top of the guest's verdict, from what the journal digest found. Pure. */
import type { JournalDigest, Coredump } from '../digest/model.ts';
import type { Outcome } from './model.ts';

export interface CoredumpPolicy {
  failOnCoredump: boolean;
  coredumpExclude?: string;
  shouldFail: boolean;
}

export function unexpectedCoredumps(digest: JournalDigest, p: CoredumpPolicy): Coredump[] {
  const exclude = p.coredumpExclude ? new RegExp(p.coredumpExclude) : undefined;
  return digest.coredumps.filter(
    (c) => !exclude || !(exclude.test(c.comm) || (c.exe !== undefined && exclude.test(c.exe))),
  );
}

/**
 * A test that passed but left a coredump fails, as in systemd's own runner: a crash the test did not
 * notice is still a bug. Tests expected to fail are left alone (their crash may be the point).
 */
export function applyCoredumpPolicy(o: Outcome, digest: JournalDigest, p: CoredumpPolicy): Outcome {
  if (o.status !== 'pass' || !p.failOnCoredump || p.shouldFail) return o;
  const dumps = unexpectedCoredumps(digest, p);
  if (dumps.length === 0) return o;
  const what = dumps
    .slice(0, 3)
    .map((c) => `${c.comm}[${c.pid ?? '?'}] ${c.signal}`)
    .join(', ');
  return {
    ...o,
    status: 'fail',
    reason: `passed, but left ${dumps.length} unexpected coredump${dumps.length > 1 ? 's' : ''}: ${what}${dumps.length > 3 ? ', ...' : ''} (set coredump-exclude or fail-on-coredump: false if expected)`,
  };
}
