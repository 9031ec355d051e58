/**
 * A test that passed but whose journal holds sanitizer reports (ASan, UBSan, LSan, MSan) fails, as in
 * systemd's wrapper, unless the reporting process matches the test's exclude regex (the wrapper matches
 * the journal line's `comm:` prefix; the digest keeps each report line as `<identifier>: <message>`).
 * Only for tests that ask (imported from systemd's meson suite). Pure.
 */
import type { JournalDigest } from '../digest/model.ts';
import type { Outcome } from './model.ts';

export interface SanitizerPolicy {
  failOnSanitizer?: boolean;
  sanitizerExclude?: string;
  shouldFail: boolean;
}

export function applySanitizerPolicy(o: Outcome, digest: JournalDigest, p: SanitizerPolicy): Outcome {
  if (o.status !== 'pass' || !p.failOnSanitizer || p.shouldFail) return o;
  const exclude = p.sanitizerExclude ? new RegExp(p.sanitizerExclude) : undefined;
  const reports = digest.sanitizers.filter((l) => {
    const ident = /^([^:]*):/.exec(l)?.[1] ?? '';
    return !exclude || !exclude.test(`${ident}:`);
  });
  if (reports.length === 0) return o;
  return {
    ...o,
    status: 'fail',
    reason: `passed, but the journal holds ${reports.length} sanitizer report line${reports.length > 1 ? 's' : ''}: ${reports[0]!.slice(0, 160)}`,
  };
}
