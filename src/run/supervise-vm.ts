/**
 * One VM's process from spawn to exit: its output copied into the console log, and an early end on a
 * timeout (after asking the guest for a task dump), a cancel, a broken KVM or the run's switch to TCG.
 * Says how it ended; decides nothing.
 *
 * mkosi's stdout is the guest's console and its stderr QEMU's and mkosi's own diagnostics (both
 * dialects, checked here): KVM failures are looked for on stderr only, so a test that prints QEMU's
 * words (systemd's own tests run QEMU in the guest) cannot pass for a broken host.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { killTree, startDetached } from '../util/process.ts';
import { qmp, SYSRQ_SHOW_TASKS } from '../qemu/qmp.ts';
import { watchAccel } from '../qemu/accel-watch.ts';
import { watchPanic } from '../qemu/panic-watch.ts';
import type { AccelFailure } from '../qemu/accel-failure.ts';

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

/**
 * Copies the streams into fd as they arrive. `settle` waits until they end, or, since the process has
 * gone, a moment at most (a leftover descendant holding a pipe must not hold up the run), then stops.
 * A write that fails (a full disk) stops the copy, not the run: the error is kept for the report.
 */
function copyInto(
  fd: number,
  streams: Readable[],
): { settle(graceMs?: number): Promise<void>; close(): void; error(): string | undefined } {
  let open = true;
  let failed: string | undefined;
  const close = () => {
    open = false;
    for (const s of streams) s.destroy();
  };
  const ends = streams.map(
    (s) =>
      new Promise<void>((resolve) => {
        s.on('data', (d: Buffer) => {
          if (!open) return;
          try {
            writeSync(fd, d);
          } catch (e) {
            failed = (e as Error).message;
            open = false;
          }
        });
        s.on('close', resolve);
        s.on('error', () => resolve());
      }),
  );
  return {
    error: () => failed,
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
export interface VmEnd {
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
  /** Stopped by the console watch after the guest kernel panicked (a kernel without pvpanic). */
  panicStopped?: boolean;
  /** The last lines QEMU and mkosi wrote on stderr (where QEMU's KVM errors are). */
  stderrTail: string[];
  /** Copying the output into the console log failed (e.g. no space left): the log is cut short. */
  consoleError?: string;
}

/** Keeps the last `max` bytes of a stream, as lines. */
function tailOf(stream: Readable | undefined, max = 16 * 1024): () => string[] {
  let buf = '';
  stream?.on('data', (d: Buffer) => {
    buf = (buf + d.toString('utf8')).slice(-max);
  });
  return () => buf.split(/\r?\n/);
}

/**
 * Waits for the VM to end, and ends it early on a timeout (after asking the guest for a task dump), a
 * cancel, a broken accelerator (watched on the console and over QMP) or the run's switch to TCG.
 */
async function supervise(
  child: ChildProcess,
  argv: string[],
  o: {
    timeoutMs?: number;
    qmpSocket: string;
    /** Watch QEMU's stderr (this stream) and QMP for a broken KVM. */
    watchAccel?: Readable;
    /** Watch the guest's console (this stream) for a kernel panic. */
    watchConsole?: Readable;
    /** Told at once when KVM is seen broken, before the VM has even ended. */
    onAccelBroken?: (f: AccelFailure, afterSeconds: number) => void;
    signal: AbortSignal;
    accelSwitched?: AbortSignal;
  },
): Promise<Omit<VmEnd, 'stderrTail'>> {
  const end: Omit<VmEnd, 'stderrTail'> = {
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
        streams: [o.watchAccel],
        qmpSocket: o.qmpSocket,
        onBroken: (f) => {
          if (end.timedOut || end.cancelled) return;
          end.accelFailure = f;
          end.accelAfterSeconds = Math.round((performance.now() - t0) / 100) / 10;
          stop();
          o.onAccelBroken?.(f, end.accelAfterSeconds);
        },
      })
    : undefined;
  const panicWatch = o.watchConsole
    ? watchPanic(o.watchConsole, () => {
        if (end.timedOut || end.cancelled || end.accelFailure) return;
        end.panicStopped = true;
        stop();
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
  panicWatch?.stop();
  o.signal.removeEventListener('abort', onAbort);
  o.accelSwitched?.removeEventListener('abort', onSwitch);
  return end;
}

export interface BootOptions {
  argv: string[];
  env: NodeJS.ProcessEnv;
  consoleLog: string;
  qmpSocket: string;
  timeoutMs: number;
  /** --shell: the VM's console is this terminal (not captured), no timeout, same process group. */
  interactive: boolean;
  /** Watch for a broken KVM (only KVM can lie). */
  kvm: boolean;
  onAccelBroken?: (f: AccelFailure, afterSeconds: number) => void;
  signal: AbortSignal;
  accelSwitched?: AbortSignal;
  onStart?: (argv: string[]) => void;
}

/** Starts the VM and waits for it to end, whatever ends it. */
export async function bootVm(o: BootOptions): Promise<VmEnd> {
  // The console log is ours to create: never write through whatever was at its name.
  await rm(o.consoleLog, { force: true });
  const consoleFd = openSync(o.consoleLog, 'wx');
  if (o.interactive)
    writeSync(consoleFd, 'itest --shell: the console was this terminal and was not captured\n');
  let copy: ReturnType<typeof copyInto> | undefined;
  let child: ChildProcess | undefined;
  try {
    // An interactive VM stays in our process group: a background group could not read the terminal.
    // Otherwise mkosi's output comes through pipes that we copy into the console log: QEMU reopens its
    // stderr, and on a file that rewinds to offset 0 and overwrites mkosi's first lines.
    child = o.interactive
      ? spawn(o.argv[0]!, o.argv.slice(1), { env: o.env, stdio: 'inherit' })
      : startDetached(o.argv, { env: o.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const output = o.interactive ? [] : [child.stdout!, child.stderr!];
    const stderrTail = tailOf(o.interactive ? undefined : child.stderr!);
    copy = copyInto(consoleFd, output);
    o.onStart?.(o.argv);
    const ended = await supervise(child, o.argv, {
      ...(o.interactive ? {} : { timeoutMs: o.timeoutMs }),
      qmpSocket: o.qmpSocket,
      ...(o.kvm && !o.interactive ? { watchAccel: child.stderr! } : {}),
      // mkosi's stdout is the guest's console (both dialects).
      ...(o.interactive ? {} : { watchConsole: child.stdout! }),
      ...(o.onAccelBroken ? { onAccelBroken: o.onAccelBroken } : {}),
      signal: o.signal,
      ...(o.kvm && o.accelSwitched ? { accelSwitched: o.accelSwitched } : {}),
    });
    await copy.settle();
    const consoleError = copy.error();
    return { ...ended, stderrTail: stderrTail(), ...(consoleError ? { consoleError } : {}) };
  } finally {
    // Whatever went wrong here, the VM does not outlive it (killTree returns at once for one that ended).
    if (child) await killTree(child);
    copy?.close();
    closeSync(consoleFd);
  }
}
