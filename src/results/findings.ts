/** What the digest found about one test, as titled line lists: the terminal and the job summary both render these. Pure. */
import type { TestResult } from './model.ts';

export interface Finding {
  title: string;
  lines: string[];
}

export function findings(t: TestResult): Finding[] {
  const out: Finding[] = [{ title: 'last lines of the unit', lines: t.outputTail }];
  const d = t.digest;
  if (d) {
    out.push(
      { title: 'failed units', lines: d.failedUnits.map((u) => `${u.unit} (${u.result})`) },
      {
        title: 'coredumps',
        lines: d.coredumps.map(
          (c) =>
            `${c.comm}[${c.pid ?? '?'}] ${c.signal}${c.exe ? ` ${c.exe}` : ''}${c.unit ? ` in ${c.unit}` : ''}`,
        ),
      },
      { title: 'sanitizer reports', lines: d.sanitizers },
      { title: 'kernel', lines: d.kernel },
      { title: 'emergency mode', lines: d.emergency ? ['the guest entered emergency mode'] : [] },
      { title: 'errors (priority err or worse)', lines: d.errors.map((e) => `${e.unit}: ${e.message}`) },
      {
        title: 'failed subtests',
        lines: d.subtests
          .filter((x) => !/^(pass|ok|success|skip)/i.test(x.result))
          .map((x) => `${x.name}: ${x.result}: ${x.message.split('\n')[0]}`),
      },
      // What the guest was doing at the end matters when it never reported.
      {
        title: 'last lines of the journal',
        lines: t.status === 'timeout' || t.status === 'error' ? d.lastLines : [],
      },
      { title: 'notes', lines: d.notes },
    );
  }
  return out.filter((f) => f.lines.length > 0);
}
