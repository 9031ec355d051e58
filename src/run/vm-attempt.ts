/**
 * One attempt of one test: start mkosi, enforce the timeout, collect status, console and journal.
 * Files stay on disk whatever happens (timeout, cancel, crash); only classification decides what they mean.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { TestSpec } from '../config/test-spec.ts';
import type { RawRun } from '../results/model.ts';
import { vmArgv, type VmConfig } from '../mkosi/vm-argv.ts';
import { killTree, startDetached } from '../util/process.ts';
import { qmp, SYSRQ_SHOW_TASKS } from '../qemu/qmp.ts';
import { tmpdir } from 'node:os';
import { checkJournal, exportToJournal } from './journal.ts';
import { digestJournal } from '../digest/read-journal.ts';
import type { JournalDigest } from '../digest/model.ts';
import { safeFileName } from '../util/sanitize.ts';
import { stripAnsi } from '../util/ansi.ts';
import { watchAccel } from '../qemu/accel-watch.ts';
import { findAccelFailure, type AccelFailure } from '../qemu/accel-failure.ts';

export interface AttemptEnv {
  outputDir: string;
  journalRemote: string;
  journalctl: string;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  onStart?: (argv: string[]) => void;
  /** --shell: the VM's console is this terminal (not captured), no timeout, same process group. */
  interactive?: boolean;
  /** Fires when the run switched from KVM to TCG: a VM still under KVM stops so it can be rerun. */
  accelSwitched?: AbortSignal;
}

export interface AttemptRun {
  raw: RawRun;
  argv: string[];
  files: { journal?: string; console: string };
  digest: JournalDigest;
  startedAt: string;
  vmMs: number;
  collectMs: number;
}

/** Canonical per-test file names; earlier attempts are renamed to `<name>.attempt-N.*` before a retry. */
export function testFiles(outputDir: string, name: string) {
  const base = safeFileName(name);
  return {
    journal: join(outputDir, `${base}.journal`),
    console: join(outputDir, `${base}.console.log`),
    work: join(outputDir, '.work', base),
    attempt: (n: number) => ({
      journal: join(outputDir, `${base}.attempt-${n}.journal`),
      console: join(outputDir, `${base}.attempt-${n}.console.log`),
    }),
  };
}

/** Moves the files of attempt n aside so that the canonical names always hold the latest attempt. */
export async function archiveAttempt(
  outputDir: string,
  name: string,
  n: number,
): Promise<{ journal?: string; console?: string }> {
  const f = testFiles(outputDir, name);
  const to = f.attempt(n);
  const out: { journal?: string; console?: string } = {};
  if (
    await rename(f.journal, to.journal).then(
      () => true,
      () => false,
    )
  )
    out.journal = to.journal;
  if (
    await rename(f.console, to.console).then(
      () => true,
      () => false,
    )
  )
    out.console = to.console;
  return out;
}

async function tail(file: string, maxBytes = 64 * 1024): Promise<string[]> {
  try {
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      const start = Math.max(0, size - maxBytes);
      const buf = Buffer.alloc(size - start);
      await fh.read(buf, 0, buf.length, start);
      return stripAnsi(buf.toString('utf8')).split(/\r?\n/);
    } finally {
      await fh.close();
    }
  } catch {
    return [];
  }
}

/** Files journal-remote rotated out of `<name>.journal` (named `<name>@<ids>.journal`). */
async function rotatedSiblings(journal: string): Promise<number> {
  const dir = dirname(journal);
  const prefix = `${basename(journal, '.journal')}@`;
  return (await readdir(dir).catch(() => [] as string[])).filter(
    (f) => f.startsWith(prefix) && f.endsWith('.journal'),
  ).length;
}

/** Before killing a hung VM: SysRq-T for a task dump on the console, then a moment for it to print. */
async function hangReport(socket: string, settleMs = 3000): Promise<string> {
  try {
    await qmp(socket, [SYSRQ_SHOW_TASKS], 3000);
    await new Promise((r) => setTimeout(r, settleMs));
    return 'sent SysRq-T (task dump) to the guest before stopping it; see the console log';
  } catch (e) {
    return `could not ask the guest for a task dump: ${(e as Error).message}`;
  }
}

async function lastLine(file: string): Promise<string | undefined> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-1)[0];
}

/**
 * Copies the streams into fd as they arrive. `settle` waits until they end, or, since the process has
 * gone, a moment at most (a leftover descendant holding a pipe must not hold up the run), then stops.
 */
function copyInto(
  fd: number,
  streams: Readable[],
): { settle(graceMs?: number): Promise<void>; close(): void } {
  let open = true;
  const close = () => {
    open = false;
    for (const s of streams) s.destroy();
  };
  const ends = streams.map(
    (s) =>
      new Promise<void>((resolve) => {
        s.on('data', (d: Buffer) => {
          if (open) writeSync(fd, d);
        });
        s.on('close', resolve);
        s.on('error', () => resolve());
      }),
  );
  return {
    async settle(graceMs = 3000) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(ends), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
      close();
    },
    close,
  };
}

/** How a VM's process ended and why: what superviseVm saw while it ran. */
interface VmEnd {
  exitCode: number | null;
  signal: string | null;
  launchError?: string;
  timedOut: boolean;
  hangReport?: string;
  cancelled: boolean;
  cancelReason?: string;
  /** Stopped because QEMU showed that KVM is broken. */
  accelFailure?: AccelFailure;
  accelAfterSeconds?: number;
  /** Stopped because the run switched to TCG (another VM showed KVM broken). */
  accelAbandoned: boolean;
}

/**
 * Waits for the VM to end, and ends it early on a timeout (after asking the guest for a task dump), a
 * cancel, a broken accelerator (watched on the console and over QMP) or the run's switch to TCG.
 */
async function superviseVm(
  child: ChildProcess,
  argv: string[],
  o: {
    timeoutMs?: number;
    qmpSocket: string;
    /** Watch QEMU's output (these streams) and QMP for a broken KVM. */
    watchAccel?: Readable[];
    signal: AbortSignal;
    accelSwitched?: AbortSignal;
  },
): Promise<VmEnd> {
  const end: VmEnd = {
    exitCode: null,
    signal: null,
    timedOut: false,
    cancelled: false,
    accelAbandoned: false,
  };
  const t0 = performance.now();
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void killTree(child);
  };
  const exited = new Promise<void>((resolve) => {
    child.on('error', (err) => {
      end.launchError = `${argv[0]}: ${err.message}`;
      resolve();
    });
    child.on('exit', (code, sig) => {
      end.exitCode = code;
      end.signal = sig;
      resolve();
    });
  });
  const watch = o.watchAccel
    ? watchAccel({
        streams: o.watchAccel,
        qmpSocket: o.qmpSocket,
        onBroken: (f) => {
          if (end.timedOut || end.cancelled) return;
          end.accelFailure = f;
          end.accelAfterSeconds = Math.round((performance.now() - t0) / 100) / 10;
          stop();
        },
      })
    : undefined;
  const timer =
    o.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          end.timedOut = true;
          watch?.stop();
          void hangReport(o.qmpSocket).then((r) => {
            end.hangReport = r;
            stop();
          });
        }, o.timeoutMs);
  const onAbort = () => {
    end.cancelled = true;
    if (typeof o.signal.reason === 'string') end.cancelReason = o.signal.reason;
    stop();
  };
  const onSwitch = () => {
    if (end.accelFailure || end.cancelled) return;
    end.accelAbandoned = true;
    stop();
  };
  o.signal.addEventListener('abort', onAbort, { once: true });
  o.accelSwitched?.addEventListener('abort', onSwitch, { once: true });
  if (o.signal.aborted) onAbort();
  else if (o.accelSwitched?.aborted) onSwitch();
  await exited;
  clearTimeout(timer);
  watch?.stop();
  o.signal.removeEventListener('abort', onAbort);
  o.accelSwitched?.removeEventListener('abort', onSwitch);
  return end;
}

export async function runAttempt(
  spec: TestSpec,
  vm: Omit<VmConfig, 'statusFile' | 'journalTarget'>,
  timeoutMs: number,
  env: AttemptEnv,
): Promise<AttemptRun> {
  const files = testFiles(env.outputDir, spec.name);
  await rm(files.work, { recursive: true, force: true });
  await mkdir(files.work, { recursive: true });
  const statusFile = join(files.work, 'status');
  const exportFile = join(files.work, 'journal.export');
  // Unix socket paths are limited to 108 bytes: keep the QMP socket short, in the temp directory.
  const qmpSocket = join(tmpdir(), `${vm.machine}.qmp`);
  const full: VmConfig = {
    ...vm,
    statusFile,
    qmpSocket,
    journalTarget: vm.transport === 'serial' ? exportFile : files.journal,
  };
  const argv = vmArgv(spec, full);
  const startedAt = new Date().toISOString();
  const t0 = performance.now();

  const consoleFd = openSync(files.console, 'w');
  if (env.interactive)
    writeSync(consoleFd, 'itest --shell: the console was this terminal and was not captured\n');
  let ended: VmEnd;
  let copy: ReturnType<typeof copyInto> | undefined;
  try {
    // An interactive VM stays in our process group: a background group could not read the terminal.
    // Otherwise mkosi's output comes through pipes that we copy into the console log: QEMU reopens its
    // stderr, and on a file that rewinds to offset 0 and overwrites mkosi's first lines.
    const child = env.interactive
      ? spawn(argv[0]!, argv.slice(1), { env: env.env, stdio: 'inherit' })
      : startDetached(argv, { env: env.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const output = env.interactive ? [] : [child.stdout!, child.stderr!];
    copy = copyInto(consoleFd, output);
    env.onStart?.(argv);
    ended = await superviseVm(child, argv, {
      timeoutMs: env.interactive ? undefined : timeoutMs,
      qmpSocket,
      // Only KVM can lie; an interactive VM's console is the terminal.
      watchAccel: vm.accel === 'kvm' && !env.interactive ? output : undefined,
      signal: env.signal,
      accelSwitched: vm.accel === 'kvm' ? env.accelSwitched : undefined,
    });
    await copy.settle();
  } finally {
    copy?.close();
    closeSync(consoleFd);
  }
  const vmMs = performance.now() - t0;
  await rm(qmpSocket, { force: true });

  const t1 = performance.now();
  let journalError: string | undefined;
  if (full.transport === 'serial')
    journalError = await exportToJournal(env.journalRemote, exportFile, files.journal);
  const check = journalError
    ? { entries: 0, error: journalError }
    : await checkJournal(env.journalctl, files.journal);
  const statusLine = await lastLine(statusFile);
  const consoleTail = await tail(files.console);
  const digest = await digestJournal({
    journalctl: env.journalctl,
    file: files.journal,
    unit: spec.unit,
    consoleTail,
  });
  if (check.error) digest.notes.unshift(check.error);
  const rotated = await rotatedSiblings(files.journal);
  if (rotated > 0) {
    digest.notes.push(
      `systemd-journal-remote rotated this journal: ${rotated} earlier file(s) beside it hold the beginning ` +
        `(read all with journalctl --file '${files.journal.replace(/\.journal$/, '')}*.journal'); the digest covers the last file`,
    );
  }
  // The export stream is only an intermediate; the .journal holds the same entries.
  if (!check.error) await rm(exportFile, { force: true });
  const collectMs = performance.now() - t1;

  const raw: RawRun = {
    exitCode: ended.exitCode,
    signal: ended.signal,
    timedOut: ended.timedOut,
    consoleTail,
    transport: full.transport,
    accel: vm.accel,
    durationMs: vmMs,
    journalEntries: check.entries,
  };
  if (ended.launchError) raw.launchError = ended.launchError;
  if (statusLine) raw.statusLine = statusLine;
  if (check.error) raw.journalError = check.error;
  if (ended.cancelled) {
    raw.cancelled = true;
    if (ended.cancelReason) raw.cancelReason = ended.cancelReason;
  }
  if (ended.hangReport) raw.hangReport = ended.hangReport;
  // QEMU that gave up on KVM and exited says so on the console; a guest that reported a status ran fine.
  // QMP may see the run state before QEMU's words reach the console file through mkosi: prefer the words.
  const onConsole =
    vm.accel === 'kvm' && !statusLine && !ended.cancelled ? findAccelFailure(consoleTail) : undefined;
  const accelFailure = ended.accelFailure
    ? { ...ended.accelFailure, line: onConsole?.line ?? ended.accelFailure.line }
    : onConsole;
  if (accelFailure) raw.accelFailure = { ...accelFailure, afterSeconds: ended.accelAfterSeconds };
  else if (ended.accelAbandoned) raw.accelAbandoned = true;
  const haveJournal = await stat(files.journal).then(
    () => true,
    () => false,
  );
  return {
    raw,
    argv,
    files: { console: files.console, ...(haveJournal ? { journal: files.journal } : {}) },
    digest,
    startedAt,
    vmMs,
    collectMs,
  };
}
