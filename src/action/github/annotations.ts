/**
 * The step's annotations (workflow commands; the check run has its own, see checks.ts) and its verdict.
 * GitHub keeps 10 error annotations per step and drops the rest, and the verdict (the failing step's
 * `setFailed`, main.ts) comes last: so the tests get at most 9 slots, and the verdict names what did not
 * fit. Pure: the action front door prints them with @actions/core.
 */
import { failedTests, failureVerb, type Results } from '../../results/model.ts';
import { plainText } from '../../results/terminal.ts';

export const MAX_ERRORS_PER_STEP = 10;
/** Names of unannotated failures the verdict lists before "...". */
const NAMED_OVERFLOW = 20;

export interface Annotation {
  level: 'error' | 'warning' | 'notice';
  title: string;
  message: string;
}

const mergeErrors = (r: Results) => (r.mergeNotes ?? []).filter((n) => n.level === 'error');

/** How many failed tests get an error annotation of their own: the slots left by the verdict and the merge's. */
export function annotatedFailures(r: Results): number {
  const slots = MAX_ERRORS_PER_STEP - 1 - (mergeErrors(r).length > 0 ? 1 : 0);
  return Math.min(failedTests(r).length, slots);
}

export function annotations(r: Results, warnings: string[] = []): Annotation[] {
  const out: Annotation[] = [];
  // A merged report's own problems (a shard without results) fail the run too: they come first.
  const merge = mergeErrors(r);
  if (merge.length > 0)
    out.push({
      level: 'error',
      title: 'itest: shards',
      message: merge.map((n) => plainText(n.message)).join('\n'),
    });
  // Annotations show plain text: only the control characters go (ANSI colours, bidi overrides).
  for (const t of failedTests(r).slice(0, annotatedFailures(r)))
    out.push({
      level: 'error',
      title: plainText(`itest: ${t.name} ${failureVerb(t)}`),
      message: plainText(
        [
          t.reason,
          ...t.outputTail.slice(-5).map((l) => `  ${l}`),
          ...(t.rerun ? [`rerun: ${t.rerun}`] : []),
        ].join('\n'),
      ),
    });
  for (const w of warnings.slice(0, 10))
    out.push({ level: 'warning', title: 'itest', message: plainText(w) });
  return out;
}

/**
 * The failing step's last error: the counts and, when there were more failures than annotation slots
 * (`annotated`: whether the step printed annotations at all), the ones without an annotation.
 */
export function verdict(r: Results, annotated = true): string {
  const s = r.summary;
  const merge = mergeErrors(r).length;
  const failed = failedTests(r);
  const shown = annotated ? annotatedFailures(r) : failed.length;
  const rest = failed.slice(shown);
  const names = rest.slice(0, NAMED_OVERFLOW).map((t) => plainText(t.name));
  const more =
    rest.length > 0
      ? `, and ${rest.length} more failure(s) than annotations (${names.join(', ')}${rest.length > names.length ? ', ...' : ''}): see the job summary`
      : '';
  return `${s.fail + s.timeout + s.error} of ${s.total} tests did not pass${merge ? ` and the merge found ${merge} problem(s)` : ''} (see the job summary)${more}`;
}
