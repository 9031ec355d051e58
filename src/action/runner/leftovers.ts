/**
 * The processes a cancelled or crashed main step left on the runner, found through /proc, not by a name
 * pattern: every process whose command line names a path in this run's output directory (mkosi and QEMU
 * carry the status and journal chardev paths) or one of the machine names seen there, plus all their
 * descendants (a grandchild in its own session, as bwrap makes).
 */
import { OutputLayout } from '../../run/output-layout.ts';
import { listProcesses, withDescendants, type Proc } from '../../util/process.ts';

export interface Leftovers {
  pids: number[];
  machines: string[];
  /** The tests whose VM was still up. */
  running: string[];
}

/** The processes of this run: those naming the output directory or a machine of it, and their descendants. Pure. */
export function leftovers(procs: Proc[], outputDir: string, self: number = process.pid): Leftovers {
  const under = `${outputDir.replace(/\/+$/, '')}/`;
  const direct = procs.filter((p) => p.pid !== self && p.cmdline.includes(under));
  const machines = [...new Set(direct.flatMap((p) => /--machine=(itest-\S+)/.exec(p.cmdline)?.[1] ?? []))];
  const roots = procs.filter(
    (p) => p.pid !== self && (direct.includes(p) || machines.some((m) => p.cmdline.includes(m))),
  );
  const pids = withDescendants(
    procs,
    roots.map((p) => p.pid),
    self,
  );
  // Each mkosi/QEMU of a running VM names its test's status channel.
  const statusRe = new OutputLayout(outputDir).statusPattern();
  const running = [...new Set(roots.flatMap((p) => statusRe.exec(p.cmdline)?.[1] ?? []))].sort();
  return { pids: [...pids], machines, running };
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
export async function stopLeftovers(outputDir: string): Promise<Leftovers & { survivors: number[] }> {
  const found = leftovers(await listProcesses(), outputDir);
  for (const pid of found.pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  return { ...found, survivors: await stillAlive(found.pids) };
}
