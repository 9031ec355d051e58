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
  /** The journal's last lines, whatever unit wrote them: what the guest was doing at the end. */
  lastLines: string[];
  /** Guest boot phases in seconds, from systemd's "Startup finished" message. */
  boot?: { kernel?: number; initrd?: number; userspace?: number };
  /** Anything that limits how far to trust the digest (unreadable or truncated journal). */
  notes: string[];
}
