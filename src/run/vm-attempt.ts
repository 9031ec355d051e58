/**
 * One attempt of one test: lay out its files, boot its VM (supervise-vm.ts), collect what it left
 * (collect-logs.ts) and put it together as one RawRun. Files stay on disk whatever happens (timeout,
 * cancel, crash); only classification decides what they mean.
 */
import { lstat, mkdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestSpec } from '../config/test-spec.ts';
import type { JournalDigest } from '../digest/model.ts';
import { vmArgv, type VmConfig } from '../mkosi/vm-argv.ts';
import { findAccelFailure, type AccelFailure } from '../qemu/accel-failure.ts';
import type { RawRun } from '../results/model.ts';
import { collectLogs, type Collected } from './collect-logs.ts';
import type { OutputLayout, TestFiles } from './output-layout.ts';
import { bootVm, type VmEnd } from './supervise-vm.ts';
import { tryUserVsock, type UserVsockEnd } from './user-vsock.ts';
import { VM_RECORD, vmRecord, writeVmRecord } from './ssh-access.ts';

export interface AttemptEnv {
  layout: OutputLayout;
  journalRemote: string;
  journalctl: string;
  /** vsock-user: the vhost-device-vsock binary. */
  vhostDevice?: string;
  /** The run's throw-away ssh key (private half), recorded per VM for `itest ssh`. */
  sshKey?: string;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  onStart?: (argv: string[]) => void;
  /** --shell: the VM's console is this terminal (not captured), no timeout, same process group. */
  interactive?: boolean;
  /** Fires when the run switched from KVM to TCG: a VM still under KVM stops so it can be rerun. */
  accelSwitched?: AbortSignal;
  /** Told the moment a VM shows KVM broken, so the run switches before its logs are collected. */
  onAccelBroken?: (f: AccelFailure, afterSeconds: number) => void;
}

export interface AttemptRun {
  raw: RawRun;
  argv: string[];
  files: { journal?: string; console?: string };
  digest: JournalDigest;
  startedAt: string;
  vmMs: number;
  collectMs: number;
}

/** How an attempt ends whose VM never started. */
const NOT_STARTED: VmEnd = {
  exitCode: null,
  signal: null,
  timedOut: false,
  cancelled: false,
  accelAbandoned: false,
  stderrTail: [],
};

/** Whether path is a file of ours: a regular file, not a symlink someone planted at its name. */
const ownFile = (path: string) =>
  lstat(path).then(
    (s) => s.isFile(),
    () => false,
  );

/** The attempt's journal and console log, as far as they exist (and are files of ours). */
export async function attemptFiles(f: TestFiles): Promise<AttemptRun['files']> {
  return {
    ...((await ownFile(f.console)) ? { console: f.console } : {}),
    ...((await ownFile(f.journal)) ? { journal: f.journal } : {}),
  };
}

/**
 * Moves the files of attempt n aside so that the canonical names always hold the latest attempt. rename
 * replaces whatever is at the new name, a symlink included, and never writes through it.
 */
export async function archiveAttempt(
  layout: OutputLayout,
  name: string,
  n: number,
): Promise<{ journal?: string; console?: string }> {
  const f = layout.test(name);
  const to = f.attempt(n);
  const moved = async (from: string, dest: string) =>
    (await ownFile(from)) &&
    rename(from, dest).then(
      () => true,
      () => false,
    );
  // The raw journal stream, when kept, goes along; the note in that attempt's digest named it by the old name.
  await moved(f.keptExport, to.keptExport);
  return {
    ...((await moved(f.journal, to.journal)) ? { journal: to.journal } : {}),
    ...((await moved(f.console, to.console)) ? { console: to.console } : {}),
  };
}

/** What the VM's end and its logs say, as one record for classification. Pure. */
export function rawRun(
  ended: VmEnd,
  logs: Collected,
  vm: Pick<VmConfig, 'transport' | 'accel'>,
  durationMs: number,
  userVsock?: UserVsockEnd | { startError: string },
): RawRun {
  const raw: RawRun = {
    exitCode: ended.exitCode,
    signal: ended.signal,
    timedOut: ended.timedOut,
    consoleTail: logs.consoleTail,
    transport: vm.transport,
    accel: vm.accel,
    durationMs,
    journalEntries: logs.check.entries,
  };
  if (ended.launchError) raw.launchError = ended.launchError;
  if (logs.statusLines.length) raw.statusLines = logs.statusLines;
  if (userVsock && 'startError' in userVsock) raw.transportError = userVsock.startError;
  else if (userVsock) {
    raw.notify = {
      messages: userVsock.notify.messages.length,
      ...(userVsock.notify.exitStatus !== undefined ? { exitStatus: userVsock.notify.exitStatus } : {}),
    };
    if (userVsock.problem) raw.transportError = userVsock.problem;
  }
  if (logs.check.error) raw.journalError = logs.check.error;
  if (ended.cancelled) {
    raw.cancelled = true;
    if (ended.cancelReason) raw.cancelReason = ended.cancelReason;
  }
  if (ended.hangReport) raw.hangReport = ended.hangReport;
  if (ended.panicStopped) raw.panicStopped = true;
  // QEMU that gave up on KVM and exited says so on its stderr (never the guest's console: a test may print
  // such words itself); a guest that reported a status ran fine. QMP may see the run state before QEMU's
  // words arrive: prefer the words.
  const onStderr =
    vm.accel === 'kvm' &&
    !logs.statusLines.length &&
    raw.notify?.exitStatus === undefined &&
    !ended.cancelled &&
    !ended.timedOut
      ? findAccelFailure(ended.stderrTail)
      : undefined;
  const accelFailure = ended.accelFailure
    ? { ...ended.accelFailure, line: onStderr?.line ?? ended.accelFailure.line }
    : onStderr;
  if (accelFailure) raw.accelFailure = { ...accelFailure, afterSeconds: ended.accelAfterSeconds };
  else if (ended.accelAbandoned) raw.accelAbandoned = true;
  return raw;
}

export async function runAttempt(
  spec: TestSpec,
  vm: Omit<VmConfig, 'statusFile' | 'journalTarget'>,
  timeoutMs: number,
  env: AttemptEnv,
): Promise<AttemptRun> {
  const files = env.layout.test(spec.name);
  await rm(files.work, { recursive: true, force: true });
  await mkdir(files.work, { recursive: true });
  // What an earlier run left at this attempt's names goes: mkosi's journal-remote (vsock) would append to
  // the journal, or write through a symlink planted there.
  for (const stale of [files.journal, files.keptExport]) await rm(stale, { force: true });
  // Unix socket paths are limited to 108 bytes: keep the QMP socket short, in the temp directory.
  const qmpSocket = join(tmpdir(), `${vm.machine}.qmp`);
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  // vsock-user: the device and its listeners come up before the VM and go after it.
  const channel =
    vm.transport === 'vsock-user'
      ? await tryUserVsock({
          machine: vm.machine,
          tmp: tmpdir(),
          vhostDevice: env.vhostDevice,
          journalRemote: env.journalRemote,
          journal: files.journal,
          env: env.env,
        })
      : undefined;
  const userVsock = channel && 'paths' in channel ? channel : undefined;
  const userVsockStart = channel && 'startError' in channel ? channel : undefined;
  const argv = vmArgv(spec, {
    ...vm,
    statusFile: files.status,
    qmpSocket,
    journalTarget: vm.transport === 'serial' ? files.journalExport : files.journal,
    ...(userVsock ? { userVsock: userVsock.paths } : {}),
  });
  const record =
    env.sshKey &&
    vmRecord({
      test: spec.name,
      machine: vm.machine,
      key: env.sshKey,
      ...(userVsock ? { uds: userVsock.paths.uds } : {}),
      ...(vm.transport === 'vsock'
        ? { mkosi: [...vm.mkosi, '--directory', vm.configDir, '--output-dir', vm.imageDir] }
        : {}),
    });
  if (record) await writeVmRecord(files.work, record);
  let ended: VmEnd;
  let userVsockEnd: UserVsockEnd | undefined;
  try {
    ended = userVsockStart
      ? NOT_STARTED
      : await bootVm({
          argv,
          env: env.env,
          consoleLog: files.console,
          qmpSocket,
          timeoutMs,
          interactive: env.interactive === true,
          kvm: vm.accel === 'kvm',
          signal: env.signal,
          ...(env.accelSwitched ? { accelSwitched: env.accelSwitched } : {}),
          ...(env.onAccelBroken ? { onAccelBroken: env.onAccelBroken } : {}),
          ...(env.onStart ? { onStart: env.onStart } : {}),
        });
  } finally {
    await rm(join(files.work, VM_RECORD), { force: true });
    userVsockEnd = await userVsock?.stop();
  }
  const vmMs = performance.now() - t0;
  await rm(qmpSocket, { force: true });

  const t1 = performance.now();
  const logs = await collectLogs(spec, files, {
    serial: vm.transport === 'serial',
    journalRemote: env.journalRemote,
    journalctl: env.journalctl,
  });
  if (ended.consoleError)
    logs.digest.notes.push(`the console log is cut short: writing it failed (${ended.consoleError})`);
  const collectMs = performance.now() - t1;
  return {
    raw: rawRun(ended, logs, vm, vmMs, userVsockStart ?? userVsockEnd),
    argv,
    files: await attemptFiles(files),
    digest: logs.digest,
    startedAt,
    vmMs,
    collectMs,
  };
}
