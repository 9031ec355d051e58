/**
 * The step's annotations (workflow commands; the check run has its own, see checks.ts): one error per
 * failed test, within GitHub's limits (10 errors per step), and one more for the overflow. Pure: the
 * action front door prints them with @actions/core.
 */
import { failedTests, failureVerb, type Results } from '../../results/model.ts';

export const MAX_ERRORS_PER_STEP = 10;

export interface Annotation {
  level: 'error' | 'warning' | 'notice';
  title: string;
  message: string;
}

export function annotations(r: Results, warnings: string[] = []): Annotation[] {
  const out: Annotation[] = [];
  // A merged report's own problems (a shard without results) fail the run too: they come first.
  const mergeErrors = (r.mergeNotes ?? []).filter((n) => n.level === 'error');
  if (mergeErrors.length > 0)
    out.push({
      level: 'error',
      title: 'itest: shards',
      message: mergeErrors.map((n) => n.message).join('\n'),
    });
  const failed = failedTests(r);
  const slots = MAX_ERRORS_PER_STEP - out.length;
  // One error slot stays free for the overflow note when there are more failures than slots.
  const room = failed.length > slots ? slots - 1 : slots;
  for (const t of failed.slice(0, room))
    out.push({
      level: 'error',
      title: `itest: ${t.name} ${failureVerb(t)}`,
      message: [
        t.reason,
        ...t.outputTail.slice(-5).map((l) => `  ${l}`),
        ...(t.rerun ? [`rerun: ${t.rerun}`] : []),
      ].join('\n'),
    });
  if (failed.length > room) {
    out.push({
      level: 'error',
      title: `itest: ${failed.length - room} more failing test(s)`,
      message: `${failed
        .slice(room)
        .map((t) => t.name)
        .join(', ')}: see the job summary and results.json`,
    });
  }
  for (const w of warnings.slice(0, 10)) out.push({ level: 'warning', title: 'itest', message: w });
  return out;
}
