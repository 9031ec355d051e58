/**
 * Check annotations: one error per failed test, within GitHub's limits (10 errors per step), and a notice
 * for the overflow. Pure: the action front door prints them with @actions/core.
 */
import type { Results } from '../results/model.ts';

export const MAX_ERRORS_PER_STEP = 10;

export interface Annotation {
  level: 'error' | 'warning' | 'notice';
  title: string;
  message: string;
}

export function annotations(r: Results, warnings: string[] = []): Annotation[] {
  const failed = r.tests.filter((t) => t.status === 'fail' || t.status === 'timeout' || t.status === 'error');
  // One error slot stays free for the overflow note when there are more failures than slots.
  const room = failed.length > MAX_ERRORS_PER_STEP ? MAX_ERRORS_PER_STEP - 1 : MAX_ERRORS_PER_STEP;
  const out: Annotation[] = failed.slice(0, room).map((t) => ({
    level: 'error',
    title: `itest: ${t.name} ${t.status === 'fail' ? 'failed' : t.status === 'timeout' ? 'timed out' : 'could not run'}`,
    message: [t.reason, ...t.outputTail.slice(-5).map((l) => `  ${l}`), `rerun: ${t.rerun}`].join('\n'),
  }));
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
