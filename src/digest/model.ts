/** What a test's journal (and console) says about how it went; part of each TestResult. */
export interface FailedUnit {
  unit: string;
  result: string;
}

export interface Coredump {
  pid: number | null;
  comm: string;
  signal: string;
  exe?: string;
  unit?: string;
  /** Where it was seen: the coredump service's record, or only the "terminated abnormally" line. */
  source: 'coredump' | 'crash-line';
}

export interface Subtest {
  name: string;
  result: string;
  message: string;
}

/** One task of the kernel's task dump (SysRq-T). */
export interface DumpedTask {
  comm: string;
  pid: number;
  tgid: number;
  ppid: number;
  /** The scheduler's state letter: R running, S sleeping, D blocked in the kernel (uninterruptible), ... */
  state: string;
  /** Its kernel stack, innermost call first, without the "?" frames (stale words the unwinder only guessed). */
  stack: string[];
}

/** The journal's last task dump, cut down to what concerns the test; the whole dump stays in the journal. */
export interface TaskDump {
  /** Seconds since boot of its first line ("sysrq: Show State"). */
  at?: number;
  /** Kernel lines from its first line to the journal's end: `journalctl -k -n <this>` shows the whole dump. */
  kernelLines: number;
  /** Tasks it lists in all. */
  tasks: number;
  /** The test unit's processes: pids of the unit's journal messages, and their descendants by ppid. */
  unitTasks: DumpedTask[];
  /** Unit tasks left out of unitTasks (limit). */
  unitTasksOmitted: number;
  /** Other tasks blocked in the kernel (state D): what the unit may wait on, or what holds up the boot. */
  blocked: DumpedTask[];
}

/** The test unit's life as systemd's job and unit messages tell it. */
export interface UnitLife {
  /** Seconds since boot of its last start job ("Starting X..."). */
  startedAt?: number;
  /** The state the last of those messages shows: "activating (start job running)", "active (started)", ... */
  state: string;
  /** Seconds since boot of that message. */
  since?: number;
}

export interface JournalDigest {
  entries: number;
  /** The test unit's own last lines (its processes' output). */
  unitOutput: string[];
  failedUnits: FailedUnit[];
  /** Messages of priority err or worse (last ones, bounded). */
  errors: { unit: string; message: string }[];
  coredumps: Coredump[];
  /** ASan/LSan/MSan/TSan/UBSan report lines (first lines of each report, bounded). */
  sanitizers: string[];
  /** Kernel oops, BUG, WARNING, panic lines. */
  kernel: string[];
  emergency: boolean;
  subtests: Subtest[];
  /** The journal's last lines, whatever unit wrote them: what the guest was doing at the end (a task dump's lines left out: see taskDump). */
  lastLines: string[];
  /** The test unit's start and its state at the journal's end; absent when systemd never mentioned it. */
  unitLife?: UnitLife;
  /** The last SysRq-T task dump (the hang report before a timeout kill). */
  taskDump?: TaskDump;
  /** Guest boot phases in seconds, from systemd's "Startup finished" message. */
  boot?: { kernel?: number; initrd?: number; userspace?: number };
  /** Anything that limits how far to trust the digest (unreadable or truncated journal). */
  notes: string[];
}
