/**
 * The processes a cancelled or crashed main step left on the runner, found from what it recorded
 * (started.ts), never from the output directory, which may be the whole workspace (`output: .`). A
 * process is this run's when it started after the main step did and its argv names one of the run's VM
 * machine names or a path in one of its image directories (where it builds the image, mkosi
 * `--output-dir DIR ... build`, and boots from it); with it go all its descendants (a grandchild in its
 * own session, as bwrap makes).
 */
import { listProcesses, withDescendants, type Proc } from '../../util/process.ts';
import { procStart } from '../../util/proc-stat.ts';
import type { Started } from './started.ts';

export interface RunProc extends Proc {
  argv: string[];
  /** Its start (procStart); undefined when it could not be read, which never counts as this run's. */
  start?: number;
}

export interface Leftovers {
  pids: number[];
  /** The machine names of the VMs still up. */
  machines: string[];
  /** The tests whose VM was still up. */
  running: string[];
  /** An image build was still running. */
  build: boolean;
}

/** The argument is the machine name, or holds it as a whole word (`-name guest=NAME,...`, `--tag NAME`). */
function names(arg: string, machine: string): boolean {
  const name = machine.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^a-z0-9-])${name}($|[^a-z0-9-])`).test(arg);
}

/**
 * The argument names a path in one of `dirs`: itself, or a value in it (`--output-dir=P`, QEMU's
 * `file=P,format=raw`). Absolute paths only, as the engine passes them.
 */
function namesPathIn(arg: string, dirs: readonly string[]): boolean {
  return arg
    .split(',')
    .map((part) => part.slice(part.indexOf('=') + 1))
    .some((v) => v.startsWith('/') && dirs.some((d) => v === d || v.startsWith(`${d.replace(/\/+$/, '')}/`)));
}

/** This run's processes among procs, with their descendants; never `self`. Pure. */
export function leftovers(procs: RunProc[], started: Started, self: number = process.pid): Leftovers {
  const floor = started.main?.start;
  const none: Leftovers = { pids: [], machines: [], running: [], build: false };
  if (floor === undefined) return none;
  const ours = procs.filter((p) => p.pid !== self && p.start !== undefined && p.start >= floor);
  const vms = new Map<number, Started['vms'][number]>();
  const others: RunProc[] = [];
  for (const p of ours) {
    const vm = started.vms.find((v) => p.argv.some((a) => names(a, v.machine)));
    if (vm) vms.set(p.pid, vm);
    else if (p.argv.some((a) => namesPathIn(a, started.imageDirs))) others.push(p);
  }
  const pids = withDescendants(procs, [...vms.keys(), ...others.map((p) => p.pid)], self);
  const found = [...vms.values()];
  return {
    pids: [...pids],
    machines: [...new Set(found.map((v) => v.machine))],
    running: [...new Set(found.map((v) => v.test))].sort(),
    build: others.some((p) => p.argv.includes('build')),
  };
}

async function stillAlive(pids: number[]): Promise<number[]> {
  for (let i = 0; i < 50; i++) {
    const live = (await listProcesses()).filter((p) => pids.includes(p.pid)).map((p) => p.pid);
    if (live.length === 0) return [];
    if (i === 49) return live;
    await new Promise((r) => setTimeout(r, 100));
  }
  return [];
}

/** Kills this run's leftovers (SIGKILL: a VM that outlived its step has nothing left to say) and waits ~5 s. */
export async function stopLeftovers(started: Started): Promise<Leftovers & { survivors: number[] }> {
  const procs = await Promise.all(
    (await listProcesses()).map(async (p) => {
      const start = await procStart(p.pid);
      return start === undefined ? p : { ...p, start };
    }),
  );
  const found = leftovers(procs, started);
  for (const pid of found.pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  return { ...found, survivors: await stillAlive(found.pids) };
}
