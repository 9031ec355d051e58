/**
 * One attempt of one test: start mkosi, enforce the timeout, collect status, console and journal.
 * Files stay on disk whatever happens (timeout, cancel, crash); only classification decides what they mean.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { TestSpec } from '../config/test-spec.ts';
import type { RawRun } from '../results/model.ts';
import { vmArgv, type VmPlan } from '../mkosi/vm-argv.ts';
import { killTree, startDetached } from './process.ts';
import { qmp, SYSRQ_SHOW_TASKS } from './qmp.ts';
import { tmpdir } from 'node:os';
import { checkJournal, exportToJournal } from './journal.ts';
import { digestJournal } from '../digest/read-journal.ts';
import type { JournalDigest } from '../digest/model.ts';
import { safeFileName } from '../util/sanitize.ts';

export interface AttemptEnv {
  outputDir: string;
  journalRemote: string;
  journalctl: string;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  onStart?: (argv: string[]) => void;
  /** --shell: the VM's console is this terminal (not captured), no timeout, same process group. */
  interactive?: boolean;
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

/** Strips the ANSI colour and cursor sequences that systemd and QEMU print on the console. */
export function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
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

export async function runAttempt(
  spec: TestSpec,
  plan: Omit<VmPlan, 'statusFile' | 'journalTarget'>,
  timeoutMs: number,
  env: AttemptEnv,
): Promise<AttemptRun> {
  const files = testFiles(env.outputDir, spec.name);
  await rm(files.work, { recursive: true, force: true });
  await mkdir(files.work, { recursive: true });
  const statusFile = join(files.work, 'status');
  const exportFile = join(files.work, 'journal.export');
  // Unix socket paths are limited to 108 bytes: keep the QMP socket short, in the temp directory.
  const qmpSocket = join(tmpdir(), `${plan.machine}.qmp`);
  const full: VmPlan = {
    ...plan,
    statusFile,
    qmpSocket,
    journalTarget: plan.transport === 'serial' ? exportFile : files.journal,
  };
  const argv = vmArgv(spec, full);
  const startedAt = new Date().toISOString();
  const t0 = performance.now();

  const consoleFd = openSync(files.console, 'w');
  if (env.interactive)
    writeSync(consoleFd, 'itest --shell: the console was this terminal and was not captured\n');
  let launchError: string | undefined;
  let timedOut = false;
  let cancelled = false;
  let exitCode: number | null = null;
  let signal: string | null = null;
  let hang: string | undefined;
  try {
    // An interactive VM stays in our process group: a background group could not read the terminal.
    const child = env.interactive
      ? spawn(argv[0]!, argv.slice(1), { env: env.env, stdio: 'inherit' })
      : startDetached(argv, { env: env.env, stdio: ['ignore', consoleFd, consoleFd] });
    env.onStart?.(argv);
    const exited = new Promise<void>((resolve) => {
      child.on('error', (err) => {
        launchError = `${argv[0]}: ${err.message}`;
        resolve();
      });
      child.on('exit', (code, sig) => {
        exitCode = code;
        signal = sig;
        resolve();
      });
    });
    const timer = env.interactive
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          void hangReport(qmpSocket).then((r) => {
            hang = r;
            return killTree(child);
          });
        }, timeoutMs);
    const onAbort = () => {
      cancelled = true;
      void killTree(child);
    };
    env.signal.addEventListener('abort', onAbort, { once: true });
    if (env.signal.aborted) onAbort();
    await exited;
    clearTimeout(timer);
    env.signal.removeEventListener('abort', onAbort);
  } finally {
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
    exitCode,
    signal,
    timedOut,
    consoleTail,
    transport: full.transport,
    durationMs: vmMs,
    journalEntries: check.entries,
  };
  if (launchError) raw.launchError = launchError;
  if (statusLine) raw.statusLine = statusLine;
  if (check.error) raw.journalError = check.error;
  if (cancelled) raw.cancelled = true;
  if (hang) raw.hangReport = hang;
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
