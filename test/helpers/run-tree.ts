// A real itest process (the CLI or the action's main step under tsx) started for a test, and every process
// it started, seen by sampling its tree in /proc while it runs: what must be gone once it has exited.
import { spawn, type ChildProcess } from 'node:child_process';
import { listProcesses, withDescendants } from '../../src/util/process.ts';

export const ROOT = new URL('../..', import.meta.url).pathname;
export const DEMO = `${ROOT}examples/demo`;
export const FAKE_MKOSI = `${ROOT}test/fixtures/fake-mkosi.mjs`;
/** fake-mkosi.mjs with faults added (STANDIN_IGNORE_TERM, STANDIN_JOURNAL): test/helpers/mkosi-standin.mjs. */
export const MKOSI_STANDIN = `${ROOT}test/helpers/mkosi-standin.mjs`;
// The processes run in a temporary directory (not this repository), so tsx is named by its path.
export const TSX = import.meta.resolve('tsx');

/**
 * `itest run` on the demo through a mkosi stand-in: no image cache, TCG, timeouts unscaled, and the serial
 * transport also on hosts with vhost-vsock (the stand-in's serial channels are the ones under test).
 */
export function standinRunArgs(o: {
  out: string;
  mkosi?: string;
  jobs?: number;
  timeout?: number;
}): string[] {
  return [
    'run',
    '--config',
    DEMO,
    '--mkosi',
    o.mkosi ?? FAKE_MKOSI,
    '--no-cache',
    '--kvm',
    'no',
    '--output',
    o.out,
    '--jobs',
    String(o.jobs ?? 2),
    '--timeout',
    String(o.timeout ?? 60),
    '--timeout-scale',
    '1',
    '--transport',
    'serial',
  ];
}

type Sampled = { pid: number; ppid: number; cmdline: string }[];

export interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export class RunTree {
  readonly seen = new Set<number>();
  readonly ended: Promise<Ended>;
  exited = false;

  constructor(readonly child: ChildProcess) {
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    this.ended = new Promise((resolve) =>
      child.on('close', (code, signal) => {
        this.exited = true;
        resolve({ code, signal, stdout, stderr });
      }),
    );
  }

  /** src/cli/index.ts (or another entry) under tsx, with `env` added to `base` (default: this environment). */
  static start(
    entry: string,
    args: string[],
    o: { cwd: string; env?: NodeJS.ProcessEnv; base?: NodeJS.ProcessEnv },
  ): RunTree {
    return new RunTree(
      spawn(process.execPath, ['--import', TSX, `${ROOT}${entry}`, ...args], {
        cwd: o.cwd,
        env: { ...(o.base ?? process.env), ...o.env },
      }),
    );
  }

  /** The live processes below the root now (all of them are remembered). */
  async sample(): Promise<Sampled> {
    const procs = await listProcesses();
    const tree = withDescendants(procs, [this.child.pid!]);
    tree.delete(this.child.pid!);
    for (const pid of tree) this.seen.add(pid);
    return procs.filter((p) => tree.has(p.pid));
  }

  /** Samples until `ready` holds for the tree (false if the process exited first or 30 s passed). */
  async waitFor(ready: (tree: Sampled) => boolean): Promise<boolean> {
    for (let i = 0; i < 300 && !this.exited; i++) {
      if (ready(await this.sample())) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  }

  /**
   * What outlived the root: every process seen below it, and any process whose command line names `dir`
   * (a VM's argv names the output directory), still alive after a moment for SIGKILLs to land.
   */
  async survivors(dir: string): Promise<string[]> {
    let alive: string[] = [];
    for (let i = 0; i < 20; i++) {
      alive = (await listProcesses())
        .filter((p) => p.pid !== process.pid && (this.seen.has(p.pid) || p.cmdline.includes(dir)))
        .map((p) => `${p.pid} ${p.cmdline.slice(0, 160)}`);
      if (alive.length === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return alive;
  }

  /** Cleanup after a failed assertion: nothing of this run is left to run on. */
  killAll(): void {
    for (const pid of [this.child.pid!, ...this.seen]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

/** The stand-in VMs (`<mkosi> ... vm ...`) in a sampled tree. */
export const vmsIn = (tree: Sampled) => tree.filter((p) => / vm( |$)/.test(p.cmdline));

/**
 * Whether n VMs are up, each with the grandchild its guest's `hang` leaves in a session of its own (counted
 * by parent, not by tree size: tsx may have an esbuild process of its own in the tree).
 */
export const vmsWithSessions = (tree: Sampled, n: number): boolean => {
  const vms = vmsIn(tree);
  return vms.length === n && vms.every((vm) => tree.some((p) => p.ppid === vm.pid));
};
