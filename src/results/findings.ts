/** What the digest found about one test, as titled line lists: the terminal and the job summary both render these. Pure. */
import type { TestResult } from './model.ts';
import type { DumpedTask, JournalDigest } from '../digest/model.ts';

export interface Finding {
  title: string;
  lines: string[];
}

export function findings(t: TestResult): Finding[] {
  const out: Finding[] = [{ title: 'last lines of the unit', lines: t.outputTail }];
  const d = t.digest;
  if (d) {
    out.push(
      // A hang: what the unit was doing when it was killed, first.
      ...(t.status === 'timeout' ? hang(t, d) : []),
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

/** The renderers show a finding's last 10 lines at least: a stack is cut to its innermost calls here. */
const FRAMES = 10;

const STATES: Record<string, string> = {
  R: 'running',
  S: 'sleeping',
  D: 'blocked in the kernel',
  T: 'stopped',
  t: 'traced',
  Z: 'zombie',
  X: 'dead',
  I: 'idle',
};

const secs = (s: number) => `${Math.round(s * 10) / 10} s`;

function task(prefix: string, x: DumpedTask): Finding {
  const state = STATES[x.state] ? `${x.state} (${STATES[x.state]})` : x.state;
  const thread = x.tgid !== x.pid ? `, thread of ${x.tgid}` : '';
  return {
    title: `${prefix}: ${x.comm}[${x.pid}] state ${state}, parent ${x.ppid}${thread}`,
    lines: x.stack.length > 0 ? x.stack.slice(0, FRAMES) : ['(no kernel stack in the dump)'],
  };
}

/** A timed-out test: when its unit started, its state at the kill, and its processes in the task dump. */
function hang(t: TestResult, d: JournalDigest): Finding[] {
  const life = d.unitLife;
  const dump = d.taskDump;
  if (d.entries === 0) return [];
  const lines: string[] = [];
  if (life?.startedAt === undefined)
    lines.push('the journal shows no start job for it: the boot never got to it');
  else {
    const before =
      dump?.at !== undefined && dump.at >= life.startedAt
        ? `, ${secs(dump.at - life.startedAt)} before the task dump taken just before the kill`
        : '';
    lines.push(`started ${secs(life.startedAt)} after boot${before}`);
  }
  if (life) lines.push(`state at the kill: ${life.state}`);
  if (dump) {
    const own = dump.unitTasks.length + dump.unitTasksOmitted;
    lines.push(
      own > 0
        ? `${own} of its processes in the task dump${dump.unitTasksOmitted ? ` (${dump.unitTasksOmitted} left out)` : ''}`
        : `none of the ${dump.tasks} tasks in the task dump is known to be its own`,
      `whole task dump (${dump.tasks} tasks, then scheduler statistics): journalctl --file ${t.files.journal ?? '<journal>'} -k -o short-monotonic -n ${dump.kernelLines}`,
    );
  } else lines.push('no task dump in the journal: it ends before the kill (the console log may show one)');
  return [
    { title: `hang: ${t.unit}`, lines },
    ...(dump?.unitTasks.map((x) => task('stuck', x)) ?? []),
    ...(dump?.blocked.map((x) => task('blocked', x)) ?? []),
  ];
}
