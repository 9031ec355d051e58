/**
 * The one results model (results.json, schema in schemas/results.schema.json). Reporters render it;
 * they never re-derive a status.
 */
import type { JournalDigest } from '../digest/model.ts';

export const RESULTS_VERSION = 1;

export type Status = 'pass' | 'fail' | 'skip' | 'timeout' | 'error';

/** What one VM run produced, before any interpretation. */
export interface RawRun {
  /** mkosi's exit code, null when it was killed by a signal or never started. */
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  /** The run was stopped because the whole run was cancelled (Ctrl-C, job cancel). */
  cancelled?: boolean;
  /** Why the run was cancelled, when the engine itself stopped it (KVM required but broken). */
  cancelReason?: string;
  /** The accelerator the VM ran with. */
  accel?: 'kvm' | 'tcg';
  /** QEMU showed that KVM cannot run this guest (the VM was stopped at once). */
  accelFailure?: { line: string; effect: 'paused' | 'exited'; afterSeconds?: number };
  /** The VM was stopped because the run switched to TCG after another VM showed KVM broken. */
  accelAbandoned?: boolean;
  /** The console watch ended the VM after the guest kernel panicked (a kernel without pvpanic). */
  panicStopped?: boolean;
  /** What the hang report did before a timeout kill. */
  hangReport?: string;
  /** The process could not be started (missing binary, permission). */
  launchError?: string;
  /** Every line the guest wrote to the status port, in order, over all its boots (status-channel.ts). */
  statusLines?: string[];
  /** vsock-user: what PID 1 sent over the notify socket (its EXIT_STATUS= is the verdict). */
  notify?: { exitStatus?: number; messages: number };
  /** vsock-user: the device or its listeners failed (could not start, or died while the VM ran). */
  transportError?: string;
  /** Number of journal entries received (0 = empty/lost journal; undefined = not checked). */
  journalEntries?: number;
  journalError?: string;
  /** Last lines of mkosi's output (console), for panic detection and messages. */
  consoleTail: string[];
  transport: 'vsock' | 'vsock-user' | 'serial';
  durationMs: number;
}

export interface Expectation {
  exitStatus: number;
  skipStatus: number;
  shouldFail: boolean;
}

export interface Outcome {
  status: Status;
  reason: string;
  /** The guest's exit status as the engine understood it (123 = unit succeeded), null when none arrived. */
  guestStatus: number | null;
  /** True when a retry may help (infrastructure, not the test). */
  infra: boolean;
}

export interface Attempt extends Outcome {
  attempt: number;
  /** The accelerator this attempt's VM ran with. */
  accel?: 'kvm' | 'tcg';
  machine: string;
  mkosiExit: number | null;
  /** The test unit's last status line in the guest's last boot. */
  statusLine?: string;
  /** Starts of the guest's manager (boots, reboots and soft reboots), when the guest reported them. */
  boots?: number;
  /** Of those, soft reboots. */
  softReboots?: number;
  /** vsock-user: the EXIT_STATUS= PID 1 sent over the notify socket, when one arrived. */
  notifyExitStatus?: number;
  startedAt: string;
  durations: { vmSeconds: number; collectSeconds: number };
  files: { journal?: string; console?: string };
}

export interface TestResult {
  name: string;
  unit: string;
  status: Status;
  reason: string;
  exitStatus: number | null;
  expected: Expectation;
  tags: string[];
  /** Passed only after a failed attempt. */
  flaky: boolean;
  attempts: Attempt[];
  /** Seconds: time waiting for a slot, time in VMs (all attempts), collecting logs. */
  timings: { queuedSeconds: number; vmSeconds: number; collectSeconds: number; totalSeconds: number };
  files: { journal?: string; console?: string };
  /** The last lines the test unit wrote, from its journal. */
  outputTail: string[];
  /** What the journal and console say: failed units, errors, coredumps, sanitizers, kernel, subtests. */
  digest?: JournalDigest;
  /** The command that reruns just this test locally. */
  rerun: string;
  /** The uploaded artifact holding this test's logs (set by the action; merged reports keep each shard's). */
  artifact?: string;
  /**
   * Set by --repeat: how each of the runs of this test ended, in order. The rest of this result is the
   * first run that failed (else the last one), so a test fails when any run failed.
   */
  repeats?: Repeats;
}

/** A test's runs under --repeat: how many, how many passed, each one's status. */
export interface Repeats {
  runs: number;
  passed: number;
  statuses: Status[];
}

export interface Environment {
  tool: { name: string; version: string };
  host: { arch: string; cpus: number; memTotal: number; kernel: string };
  mkosi: { version: string; dialect: string; command: string[] };
  qemu: { version: string };
  accel: 'kvm' | 'tcg';
  accelDetail: string;
  /** Set when KVM turned out broken and the run fell back to TCG: when, how, and what QEMU said. */
  accelFallback?: {
    detectedBy: 'probe' | 'vm';
    reason: string;
    qemuLine: string;
    test?: string;
    /** Tests whose KVM attempt was stopped and rerun under TCG. */
    rerun: string[];
  };
  transport: 'vsock' | 'vsock-user' | 'serial';
  transportDetail: string;
  jobs: number;
  timeoutScale: number;
  image: {
    key: string;
    cache: 'hit' | 'miss' | 'external' | 'disabled';
    backend: string;
    dir: string;
    restoreSeconds?: number;
    buildSeconds?: number;
    saveSeconds?: number;
    /** --incremental: the base state the build started from and what was kept of it. */
    base?: {
      key: string;
      /** local (the cache directory) or github-actions. */
      backend: string;
      match: 'exact' | 'near' | 'fresh';
      from?: string;
      restoredBytes: number;
      restoreSeconds?: number;
      /** Something found that could not be used (a refused or failed restore): the build started fresh. */
      restoreNote?: string;
      savedBytes?: number;
      savedKey?: string;
      saveSeconds?: number;
      /** What was saved: `cache` (mkosi's trees, only as root), `packages`, `build`. */
      savedParts?: string[];
      /** Why the state was not saved. */
      notSaved?: string;
      retriedFromScratch?: boolean;
      pruned?: string[];
    };
  };
}

export interface Summary {
  total: number;
  pass: number;
  fail: number;
  skip: number;
  timeout: number;
  error: number;
  flaky: number;
  ok: boolean;
}

/** Which shard of a sharded run this is; `attempt` is the CI job's run attempt. */
export interface ShardMeta {
  /** The id of the plan this shard ran. */
  planId?: string;
  index: number;
  total: number;
  attempt: number;
  plannedSeconds: number;
}

/** One shard as the merged report sees it. */
export interface ShardReport {
  index: number;
  attempt: number;
  status: 'ok' | 'failed' | 'missing';
  tests: string[];
  plannedSeconds: number;
  /** Wall time of the shard's run and the VM-seconds its tests took; absent when missing. */
  wallSeconds?: number;
  vmSeconds?: number;
  source?: string;
}

export interface MergeNote {
  level: 'error' | 'notice';
  message: string;
}

export interface Results {
  version: typeof RESULTS_VERSION;
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  config: { dir: string; manifest: string };
  environment: Environment;
  summary: Summary;
  tests: TestResult[];
  /** Set when this run is one shard of a sharded run. */
  shard?: ShardMeta;
  /** Set on a merged report: every planned shard, including missing ones. */
  shards?: ShardReport[];
  /** What the merge found: errors (missing or duplicated shards) fail the run, notices (re-runs) do not. */
  mergeNotes?: MergeNote[];
}

/** The tests that did not pass: failed, timed out or could not run. */
export function failedTests(r: Pick<Results, 'tests'>): TestResult[] {
  return r.tests.filter((t) => t.status === 'fail' || t.status === 'timeout' || t.status === 'error');
}

/** How a failed test ended, in words: "failed", "timed out" or "could not run". */
export function failureVerb(t: Pick<TestResult, 'status'>): string {
  return t.status === 'fail' ? 'failed' : t.status === 'timeout' ? 'timed out' : 'could not run';
}

/** The counts in words, flaky only when there are any: "3 passed", "1 failed", ... */
export function countWords(s: Summary): string[] {
  return [
    `${s.pass} passed`,
    `${s.fail} failed`,
    `${s.skip} skipped`,
    `${s.timeout} timed out`,
    `${s.error} errors`,
    ...(s.flaky ? [`${s.flaky} flaky`] : []),
  ];
}

export function summarize(tests: TestResult[]): Summary {
  const count = (s: Status) => tests.filter((t) => t.status === s).length;
  const s = {
    total: tests.length,
    pass: count('pass'),
    fail: count('fail'),
    skip: count('skip'),
    timeout: count('timeout'),
    error: count('error'),
    flaky: tests.filter((t) => t.flaky).length,
  };
  return { ...s, ok: s.total > 0 && s.fail + s.timeout + s.error === 0 };
}

/** The loud line every report carries when KVM turned out broken and the run fell back to TCG. */
export function accelFallbackNote(
  e: Pick<Environment, 'accelFallback' | 'timeoutScale'>,
): string | undefined {
  const fb = e.accelFallback;
  if (!fb) return undefined;
  const where =
    fb.detectedBy === 'probe' ? 'the boot probe, before any test' : `the VM of ${fb.test ?? 'a test'}`;
  const rerun = fb.rerun.length > 0 ? `; stopped under KVM and rerun under TCG: ${fb.rerun.join(', ')}` : '';
  return (
    `KVM is broken on this host, so this run used software emulation (TCG, timeouts x${e.timeoutScale}). ` +
    `Found by ${where}: ${fb.reason}${fb.qemuLine && !fb.reason.includes(fb.qemuLine) ? `. QEMU said: ${fb.qemuLine}` : ''}${rerun}`
  );
}
