/** When a process started, from /proc: what tells a process apart from a later one that reuses its PID. Linux only. */
import { readFile } from 'node:fs/promises';

/** Field 22 of /proc/<pid>/stat: clock ticks from boot to the process's start; undefined once it is gone. */
export async function procStart(pid: number | 'self'): Promise<number | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // The fields after the parenthesised command name (which may hold spaces) start at field 3, the state.
  const start = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  return stat && Number.isFinite(start) ? start : undefined;
}
