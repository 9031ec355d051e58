/**
 * A process's state and start time from /proc/<pid>/stat: the start time (clock ticks from boot to the
 * process's start, field 22) tells a process apart from a later one that reuses its PID. Linux only.
 */
import { readFile } from 'node:fs/promises';

export interface ProcStat {
  /** Field 3: R, S, D, Z (a zombie: it has exited and only waits for its reaper), ... */
  state: string;
  /** Field 22, in clock ticks after boot. */
  start: number;
}

/** pid's state and start time; undefined once it is gone (or /proc cannot tell). */
export async function procStat(pid: number | 'self'): Promise<ProcStat | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // The fields after the parenthesised command name (which may hold spaces) start at field 3, the state.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const start = Number(fields[19]);
  return stat && fields[0] && Number.isFinite(start) ? { state: fields[0], start } : undefined;
}

/** pid's start time, zombies included; undefined once it is gone. */
export async function procStart(pid: number | 'self'): Promise<number | undefined> {
  return (await procStat(pid))?.start;
}
