/**
 * Builds a JournalDigest from journal entries one at a time, in bounded memory whatever the journal's
 * size: every list is a capped ring or a capped prefix. Pure.
 */
import type { Coredump, JournalDigest, UnitLife } from './model.ts';
import { TaskDumpReader } from './task-dump.ts';

export type Entry = Record<string, unknown>;

/** systemd's catalog message IDs (sd-messages.h). */
export const MESSAGE_IDS = {
  /** "X.service: Failed with result 'exit-code'." with UNIT_RESULT. */
  unitFailureResult: 'd9b373ed55a64feb8242e02dbe79a49c',
  /** "Failed to start X." */
  unitFailed: 'be02cf6855d2428ba40df7e9d022f03d',
  coredump: 'fc2e22bc6ee647b6b90729ab34a250b1',
  /** "Startup finished in 9.7s (kernel) + 28.0s (initrd) + 51.4s (userspace) = ..." */
  startupFinished: 'b07a249cd024414a82dd00cd181378ff',
  subtest: '27479699ef7fb3465eb94a6a2224ac15',
  /** Job and unit state changes ("Starting X...", "Started X.", "Stopping X...", "Stopped X."), with UNIT. */
  unitStarting: '7d4958e842da4a758f6c1cdc7b36dcc5',
  unitStarted: '39f53479d3a045ac8e11786248231fbf',
  unitStopping: 'de5b426a63be47a7b6ac3eaac82e2f6f',
  unitStopped: '9d1aaa27d60140bd96365438aad20286',
} as const;

export interface DigestLimits {
  unitOutput: number;
  errors: number;
  coredumps: number;
  sanitizers: number;
  kernel: number;
  subtests: number;
  lastLines: number;
  /** Task dump: the unit's tasks and other blocked tasks kept, frames per task, pids taken as the unit's. */
  dumpUnitTasks: number;
  dumpBlocked: number;
  dumpFrames: number;
  unitPids: number;
}

export const DEFAULT_LIMITS: DigestLimits = {
  unitOutput: 30,
  errors: 20,
  coredumps: 20,
  sanitizers: 40,
  kernel: 40,
  subtests: 500,
  lastLines: 30,
  dumpUnitTasks: 8,
  dumpBlocked: 4,
  dumpFrames: 24,
  unitPids: 512,
};

/** A journal field as text: journalctl -o json gives strings, arrays for repeated fields, byte arrays for binary. */
export function field(e: Entry, name: string): string | undefined {
  const v = e[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x === 'number')) return Buffer.from(v as number[]).toString('utf8');
    return v
      .map((x) => (Array.isArray(x) ? Buffer.from(x as number[]).toString('utf8') : String(x)))
      .join('\n');
  }
  return String(v);
}

class Ring<T> {
  private items: T[] = [];
  constructor(private readonly cap: number) {}
  push(x: T) {
    this.items.push(x);
    if (this.items.length > this.cap) this.items.shift();
  }
  values(): T[] {
    return [...this.items];
  }
}

const SANITIZER =
  /(==\d+==\s*ERROR: \w+Sanitizer|runtime error:|SUMMARY: \w+Sanitizer|WARNING: \w+Sanitizer)/;
// Headlines only: "Call Trace:" and register dumps also appear in SysRq task dumps, which are not failures.
const KERNEL =
  /(Kernel panic - not syncing|BUG: |WARNING: CPU|Oops: |general protection fault|Unable to handle kernel|kernel BUG at|soft lockup|blocked for more than)/;
const CRASH_LINE = /Process (\d+) \(([^)]*)\) terminated abnormally with signal (\d+)\/(\w+)/;
const DUMPED = /Main process exited, code=dumped, status=\d+\/(\w+)/;

/** Seconds since boot; a kernel line's own time (journald's receive time can lag by seconds). */
function bootSeconds(e: Entry): number | undefined {
  const us = Number(field(e, '_SOURCE_MONOTONIC_TIMESTAMP') ?? field(e, '__MONOTONIC_TIMESTAMP'));
  return Number.isFinite(us) ? Math.round(us / 1000) / 1000 : undefined;
}

/** The unit's state after one of systemd's job or unit messages about it; undefined for other messages. */
function lifeState(id: string | undefined, msg: string, result: string | undefined): string | undefined {
  switch (id) {
    case MESSAGE_IDS.unitStarting:
      return 'activating (start job running)';
    case MESSAGE_IDS.unitStarted:
      // A oneshot service's start job ends when its command does: "Finished X."
      return /^Finished\b/.test(msg) ? 'finished (its command ended)' : 'active (started)';
    case MESSAGE_IDS.unitStopping:
      return 'deactivating (stop job running)';
    case MESSAGE_IDS.unitStopped:
      return 'inactive (stopped)';
    case MESSAGE_IDS.unitFailed:
      return 'failed';
    case MESSAGE_IDS.unitFailureResult:
      return `failed (${result ?? 'failed'})`;
    default:
      return undefined;
  }
}

export class DigestBuilder {
  private entries = 0;
  private unitOutput: Ring<string>;
  private errors: Ring<{ unit: string; message: string }>;
  private lastLines: Ring<string>;
  private failed = new Map<string, string>();
  private coredumps: Coredump[] = [];
  private sanitizers: string[] = [];
  private kernel: string[] = [];
  private subtests: JournalDigest['subtests'] = [];
  private emergency = false;
  private boot: JournalDigest['boot'];
  private notes: string[] = [];
  private life: UnitLife | undefined;
  private dump: TaskDumpReader;

  constructor(
    private readonly unit: string,
    private readonly limits: DigestLimits = DEFAULT_LIMITS,
  ) {
    this.unitOutput = new Ring(limits.unitOutput);
    this.errors = new Ring(limits.errors);
    this.lastLines = new Ring(limits.lastLines);
    this.dump = new TaskDumpReader({
      unitTasks: limits.dumpUnitTasks,
      blocked: limits.dumpBlocked,
      frames: limits.dumpFrames,
      pids: limits.unitPids,
    });
  }

  add(e: Entry): void {
    this.entries++;
    const msg = field(e, 'MESSAGE') ?? '';
    const sdUnit = field(e, '_SYSTEMD_UNIT');
    const about = field(e, 'UNIT') ?? field(e, 'USER_UNIT');
    const ident = field(e, 'SYSLOG_IDENTIFIER') ?? sdUnit ?? '';
    const id = field(e, 'MESSAGE_ID');
    const prio = Number(field(e, 'PRIORITY') ?? 6);
    const line = `${ident}: ${msg}`;
    const kernelLine = field(e, '_TRANSPORT') === 'kernel';
    // A task dump is a screen of every task and scheduler statistics: its own digest replaces it here.
    const inDump = kernelLine && this.dump.kernelLine(msg, bootSeconds(e));
    if (!inDump) this.lastLines.push(line);

    if (sdUnit === this.unit) this.unitOutput.push(msg);
    if (sdUnit === this.unit || this.inUnitCgroup(field(e, '_SYSTEMD_CGROUP')))
      this.dump.unitPid(Number(field(e, '_PID')));
    if (about === this.unit) {
      let state = lifeState(id, msg, field(e, 'UNIT_RESULT'));
      // "Failed to start X." follows "X: Failed with result 'timeout'.": keep the result.
      if (state === 'failed' && this.life?.state.startsWith('failed (')) state = this.life.state;
      if (state) {
        const at = bootSeconds(e);
        const startedAt = id === MESSAGE_IDS.unitStarting ? at : this.life?.startedAt;
        this.life = {
          ...(startedAt === undefined ? {} : { startedAt }),
          state,
          ...(at === undefined ? {} : { since: at }),
        };
      }
    }
    if (prio <= 3) this.errors.push({ unit: sdUnit ?? about ?? ident, message: msg });

    if (id === MESSAGE_IDS.unitFailureResult && about) {
      this.failed.set(about, field(e, 'UNIT_RESULT') ?? 'failed');
    } else if (id === MESSAGE_IDS.unitFailed && about && !this.failed.has(about)) {
      this.failed.set(about, 'failed');
    }

    if (id === MESSAGE_IDS.coredump) {
      const pid = Number(field(e, 'COREDUMP_PID'));
      const existing = this.coredumps.find((c) => c.pid === pid && c.source === 'crash-line');
      const c: Coredump = {
        pid: Number.isFinite(pid) ? pid : null,
        comm: field(e, 'COREDUMP_COMM') ?? '?',
        signal: field(e, 'COREDUMP_SIGNAL_NAME') ?? `signal ${field(e, 'COREDUMP_SIGNAL') ?? '?'}`,
        source: 'coredump',
      };
      const exe = field(e, 'COREDUMP_EXE');
      const cunit = field(e, 'COREDUMP_UNIT');
      if (exe) c.exe = exe;
      if (cunit) c.unit = cunit;
      if (existing) Object.assign(existing, c);
      else if (this.coredumps.length < this.limits.coredumps) this.coredumps.push(c);
    } else {
      // Without the coredump service (socket not started) only this line tells that something crashed.
      const m = CRASH_LINE.exec(msg);
      if (
        m &&
        !this.coredumps.some((c) => c.pid === Number(m[1])) &&
        this.coredumps.length < this.limits.coredumps
      ) {
        this.coredumps.push({
          pid: Number(m[1]),
          comm: m[2] ?? '?',
          signal: `SIG${m[4]}`.replace(/^SIGSIG/, 'SIG'),
          source: 'crash-line',
        });
      }
      const d = DUMPED.exec(msg);
      if (
        d &&
        about &&
        !this.coredumps.some((c) => c.unit === about) &&
        this.coredumps.length < this.limits.coredumps
      ) {
        this.coredumps.push({
          pid: null,
          comm: about,
          signal: `SIG${d[1]}`.replace(/^SIGSIG/, 'SIG'),
          unit: about,
          source: 'crash-line',
        });
      }
    }

    if (SANITIZER.test(msg) && this.sanitizers.length < this.limits.sanitizers) this.sanitizers.push(line);
    if (kernelLine && KERNEL.test(msg) && this.kernel.length < this.limits.kernel) this.kernel.push(msg);
    if (/entering emergency mode|Started emergency\.service|Reached target emergency\.target/i.test(msg))
      this.emergency = true;

    if (id === MESSAGE_IDS.startupFinished && !this.boot) {
      const secs = (what: string) => {
        const m = new RegExp(`([\\d.]+(?:min [\\d.]+)?)(m?s) \\(${what}\\)`).exec(msg);
        if (!m) return undefined;
        const [min, sec] = m[1]!.includes('min') ? m[1]!.split('min ').map(Number) : [0, Number(m[1])];
        return Math.round(((min ?? 0) * 60 + (sec ?? 0) / (m[2] === 'ms' ? 1000 : 1)) * 10) / 10;
      };
      this.boot = { kernel: secs('kernel'), initrd: secs('initrd'), userspace: secs('userspace') };
    }
    if (id === MESSAGE_IDS.subtest && this.subtests.length < this.limits.subtests) {
      this.subtests.push({
        name: field(e, 'SUBTEST') ?? '?',
        result: field(e, 'SUBTEST_RESULT') ?? '?',
        message: msg,
      });
    }
  }

  /** Adds what only the console shows (a panic the journal never stored). */
  addConsole(lines: string[]): void {
    for (const l of lines) {
      if (
        KERNEL.test(l) &&
        this.kernel.length < this.limits.kernel &&
        !this.kernel.some((k) => l.includes(k))
      )
        this.kernel.push(l.trim());
      if (/You are in emergency mode|Entering emergency mode/i.test(l)) this.emergency = true;
    }
  }

  /** The unit's cgroup or one below it (a delegated subtree, a scope the test made). */
  private inUnitCgroup(cgroup: string | undefined): boolean {
    return !!cgroup && (cgroup.endsWith(`/${this.unit}`) || cgroup.includes(`/${this.unit}/`));
  }

  note(n: string): void {
    this.notes.push(n);
  }

  finish(): JournalDigest {
    const dump = this.dump.finish();
    return {
      entries: this.entries,
      unitOutput: this.unitOutput.values(),
      failedUnits: [...this.failed].map(([unit, result]) => ({ unit, result })),
      errors: this.errors.values(),
      coredumps: this.coredumps,
      sanitizers: this.sanitizers,
      kernel: this.kernel,
      emergency: this.emergency,
      subtests: this.subtests,
      lastLines: this.lastLines.values(),
      ...(this.life ? { unitLife: this.life } : {}),
      ...(dump ? { taskDump: dump } : {}),
      ...(this.boot ? { boot: this.boot } : {}),
      notes: this.notes,
    };
  }
}
