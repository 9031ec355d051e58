/** Process adapters: run a command to completion, or start one whose whole tree can be killed. No shells. */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Set when the command could not be started at all (ENOENT, EACCES). */
  spawnError?: NodeJS.ErrnoException;
}

/** Runs argv[0] with argv[1..] and collects its output. Never throws for a failing command. */
export function runCommand(
  argv: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; input?: string } = {},
): Promise<CommandResult> {
  return new Promise((resolve) => {
    const [file, ...args] = argv;
    if (!file) throw new Error('runCommand: empty argv');
    let stdout = '';
    let stderr = '';
    let child: ChildProcess;
    try {
      child = spawn(file, args, {
        env: opts.env ?? process.env,
        cwd: opts.cwd,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
    } catch (err) {
      resolve({ code: null, signal: null, stdout, stderr, spawnError: err as NodeJS.ErrnoException });
      return;
    }
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.input ?? '');
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      resolve({ code: null, signal: null, stdout, stderr, spawnError: err });
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Detached processes that have not exited yet: ended, trees and all, should this process exit first. */
const live = new Set<ChildProcess>();

/**
 * Starts a long-running process in its own process group so that its whole tree can be ended. Detached,
 * it would outlive us, parented to init and with no timeout: if this process exits while it runs (an
 * uncaught exception, a front door's process.exit), it and its descendants are killed on the way out.
 */
export function startDetached(argv: string[], opts: SpawnOptions): ChildProcess {
  const [file, ...args] = argv;
  if (!file) throw new Error('startDetached: empty argv');
  const child = spawn(file, args, { ...opts, detached: true });
  if (child.pid !== undefined) {
    if (live.size === 0) process.on('exit', killLiveTrees);
    live.add(child);
    child.once('exit', () => {
      live.delete(child);
      if (live.size === 0) process.off('exit', killLiveTrees);
    });
  }
  return child;
}

/** Synchronous, as an 'exit' listener must be. */
function killLiveTrees(): void {
  const procs = processesNow();
  for (const c of live) signalAll([...withDescendants(procs, [c.pid!])], c.pid!, 'SIGKILL');
}

/** One process as /proc shows it. */
export interface Proc {
  pid: number;
  ppid: number;
  /** argv joined with spaces. */
  cmdline: string;
}

/** One /proc entry read back; undefined for a zombie (it is only waiting for its reaper). */
function procOf(entry: string, stat: string, cmdline: string): (Proc & { argv: string[] }) | undefined {
  // State and ppid follow the parenthesised command name, which may itself contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z') return undefined;
  const argv = cmdline.split('\0').filter(Boolean);
  return { pid: Number(entry), ppid: Number(fields[1]), argv, cmdline: argv.join(' ') };
}

/** Every live process (zombies left out). Linux only. */
export async function listProcesses(): Promise<(Proc & { argv: string[] })[]> {
  const out: (Proc & { argv: string[] })[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const p = procOf(
        entry,
        await readFile(`/proc/${entry}/stat`, 'utf8'),
        await readFile(`/proc/${entry}/cmdline`, 'utf8'),
      );
      if (p) out.push(p);
    } catch {
      // The process ended while we looked.
    }
  }
  return out;
}

/** listProcesses, synchronously (for an 'exit' listener). */
function processesNow(): Proc[] {
  const out: Proc[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const p = procOf(
        entry,
        readFileSync(`/proc/${entry}/stat`, 'utf8'),
        readFileSync(`/proc/${entry}/cmdline`, 'utf8'),
      );
      if (p) out.push(p);
    } catch {
      // The process ended while we looked.
    }
  }
  return out;
}

/** The roots and everything below them in procs (children may leave the process group: bwrap does). Pure. */
export function withDescendants(procs: Proc[], roots: Iterable<number>, exclude?: number): Set<number> {
  const pids = new Set(roots);
  for (let size = -1; size !== pids.size;) {
    size = pids.size;
    for (const p of procs) if (pids.has(p.ppid) && p.pid !== exclude) pids.add(p.pid);
  }
  return pids;
}

/** PIDs of every descendant of pid. */
export async function descendants(pid: number): Promise<number[]> {
  const all = withDescendants(await listProcesses(), [pid]);
  all.delete(pid);
  return [...all];
}

function signalAll(pids: number[], pgid: number, signal: NodeJS.Signals): void {
  try {
    // Only a group of its own (detached); never our own group.
    if (pgid !== process.pid) process.kill(-pgid, signal);
  } catch {
    // Group already gone, or the process leads no group.
  }
  for (const p of pids) {
    try {
      process.kill(p, signal);
    } catch {
      // Already gone.
    }
  }
}

/**
 * Ends a process and everything it started: SIGTERM to the group and every descendant, then SIGKILL to
 * whatever is left after graceMs. Resolves when the root process has exited.
 */
export async function killTree(child: ChildProcess, graceMs = 5000): Promise<void> {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const tree = await descendants(pid);
  signalAll([pid, ...tree], pid, 'SIGTERM');
  const timer = new Promise<'late'>((r) => setTimeout(() => r('late'), graceMs));
  if ((await Promise.race([exited.then(() => 'done' as const), timer])) === 'late') {
    signalAll([pid, ...tree, ...(await descendants(pid))], pid, 'SIGKILL');
    await exited;
  }
  // Stragglers that outlived their parent (re-parented to init) still carry their old PIDs.
  signalAll(tree, pid, 'SIGKILL');
}
