/**
 * Reads the kernel's task dump (SysRq-T: "sysrq: Show State", then per task a `task:... pid:... ppid:...`
 * line and its stack, then scheduler statistics) from the journal's kernel lines, one line at a time.
 * Keeps only the test unit's processes and tasks blocked in the kernel; the rest stays in the journal.
 * Pure, bounded.
 */
import type { DumpedTask, TaskDump } from './model.ts';

export interface TaskDumpLimits {
  /** Unit tasks kept (with their stacks). */
  unitTasks: number;
  /** Blocked (state D) tasks outside the unit kept. */
  blocked: number;
  /** Stack frames kept per task. */
  frames: number;
  /** Pids remembered as the unit's. */
  pids: number;
}

const START = /^(sysrq: ?|SysRq ?: )Show State/;
// Kernel 5.14+ (tgid since 6.8); older kernels print spaces after the colons.
const HEADER = /^task:(.+?)\s+state:(\S+)\s+stack:\s*\d+\s+pid:\s*(\d+)\s+(?:tgid:\s*(\d+)\s+)?ppid:\s*(\d+)/;
// "func+0x1a/0x30 [module]"; "? " marks a frame the unwinder is not sure of.
const FRAME = /^\s*(\?\s+)?([\w.$]+\+0x[0-9a-f]+\/0x[0-9a-f]+(?:\s+\[[\w-]+\])?)\s*$/;
/** A dump prints in one burst: a kernel line this long after the previous one is not part of it. */
const GAP_SECONDS = 2;

export class TaskDumpReader {
  private readonly pids = new Set<number>();
  private dump: TaskDump | undefined;
  /** The kept task whose stack frames come next. */
  private current: DumpedTask | undefined;
  private open = false;
  private lastAt: number | undefined;

  constructor(private readonly limits: TaskDumpLimits) {}

  /** A pid of the test unit (a _PID of its journal messages). Pid 1 is every orphan's parent: never the unit's. */
  unitPid(pid: number): void {
    if (Number.isInteger(pid) && pid > 1 && this.pids.size < this.limits.pids) this.pids.add(pid);
  }

  /** One kernel line at `at` seconds since boot; true when it belongs to a task dump. */
  kernelLine(msg: string, at: number | undefined): boolean {
    if (START.test(msg)) {
      // The last dump is the one before the kill: an earlier one (the test's own) is replaced.
      this.dump = {
        ...(at === undefined ? {} : { at }),
        kernelLines: 1,
        tasks: 0,
        unitTasks: [],
        unitTasksOmitted: 0,
        blocked: [],
      };
      this.open = true;
      this.current = undefined;
      this.lastAt = at;
      return true;
    }
    if (!this.dump) return false;
    this.dump.kernelLines++;
    if (!this.open) return false;
    if (at !== undefined && this.lastAt !== undefined && at - this.lastAt > GAP_SECONDS) {
      this.open = false;
      this.current = undefined;
      return false;
    }
    this.lastAt = at ?? this.lastAt;
    const h = HEADER.exec(msg);
    if (h) {
      this.task(h);
      return true;
    }
    const f = FRAME.exec(msg);
    if (f && !f[1] && this.current && this.current.stack.length < this.limits.frames)
      this.current.stack.push(f[2]!);
    return true;
  }

  private task(h: RegExpExecArray): void {
    const d = this.dump!;
    d.tasks++;
    const pid = Number(h[3]);
    const t: DumpedTask = {
      comm: h[1]!.trim(),
      pid,
      tgid: h[4] ? Number(h[4]) : pid,
      ppid: Number(h[5]),
      state: h[2]!,
      stack: [],
    };
    // The dump walks tasks in fork order, so a parent comes before its children: one pass finds them all.
    const inUnit = this.pids.has(t.pid) || this.pids.has(t.tgid) || this.pids.has(t.ppid);
    this.current = undefined;
    if (inUnit) {
      this.unitPid(t.pid);
      if (d.unitTasks.length < this.limits.unitTasks) d.unitTasks.push((this.current = t));
      else d.unitTasksOmitted++;
    } else if (t.state === 'D' && d.blocked.length < this.limits.blocked) d.blocked.push((this.current = t));
  }

  finish(): TaskDump | undefined {
    return this.dump;
  }
}
