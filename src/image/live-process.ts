/**
 * A process named so that the name stays true across PID reuse: `<pid>-<start>-<boot>`, with its start
 * time (clock ticks after boot, /proc/<pid>/stat field 22) and the first 8 hex digits of the boot id. The
 * local image cache puts these tokens into file names, so that whether their maker still runs is known
 * from the name alone, whatever happened to it (SIGKILL, power loss). Linux only: where /proc cannot
 * tell, every process counts as alive, so nothing in use is ever deleted on a guess.
 */
import { readFile } from 'node:fs/promises';
import { procStat } from '../util/proc-stat.ts';

const TOKEN = /^(\d+)-(\d+)-([0-9a-f]{8})$/;

interface Identity {
  pid: number;
  start: string;
  boot: string;
}

async function bootId(): Promise<string | undefined> {
  const id = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => '')).trim();
  return id ? id.replace(/-/g, '').slice(0, 8) : undefined;
}

/** The start time of pid, or undefined when it is gone or a zombie (it only waits for its reaper). */
async function startTime(pid: number | 'self'): Promise<string | undefined> {
  const s = await procStat(pid);
  return s && s.state !== 'Z' ? String(s.start) : undefined;
}

let self: Promise<string> | undefined;

/** This process's token. */
export function selfToken(): Promise<string> {
  self ??= (async () =>
    `${process.pid}-${(await startTime('self')) ?? '0'}-${(await bootId()) ?? '00000000'}`)();
  return self;
}

export function parseToken(token: string): Identity | undefined {
  const m = TOKEN.exec(token);
  return m ? { pid: Number(m[1]), start: m[2]!, boot: m[3]! } : undefined;
}

/** Whether the process a token names still runs (a token that does not parse names nobody). */
export async function isAlive(token: string): Promise<boolean> {
  const id = parseToken(token);
  if (!id) return false;
  const boot = await bootId();
  if (!boot || (await startTime('self')) === undefined) return true;
  if (id.boot !== boot) return false;
  return (await startTime(id.pid)) === id.start;
}
