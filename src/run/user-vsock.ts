/**
 * The host side of one VM's user-space vsock (transport `vsock-user`, src/qemu/user-vsock.ts): its
 * vhost-device-vsock, a listener for PID 1's sd_notify messages (the guest's own EXIT_STATUS=), and
 * systemd-journal-remote receiving journald's forwarded journal into the test's .journal. Started before
 * the VM, stopped after it whatever ended it; nothing of it outlives the attempt.
 */
import type { ChildProcess } from 'node:child_process';
import { access, mkdir, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { killTree, startDetached } from '../util/process.ts';
import { isReboot } from '../results/status-channel.ts';
import { userVsockPaths, vhostDeviceArgv, type UserVsockPaths } from '../qemu/user-vsock.ts';

/** What PID 1 told the host over the notify socket. */
export interface NotifyLog {
  /** Every message, in arrival order (one per connection: READY=1, STATUS=..., EXIT_STATUS=...). */
  messages: string[];
  /**
   * The EXIT_STATUS= PID 1 sent at the stop that ended the VM: the guest's verdict. PID 1 sends one at every
   * stop (`EXIT_STATUS=0` with `X_SYSTEMD_SHUTDOWN=reboot` before a reboot, seen with systemd 257), so one
   * sent before a reboot is dropped: only a later boot's can be the verdict.
   */
  exitStatus?: number;
  /** The shutdown PID 1 announced last (X_SYSTEMD_SHUTDOWN=: reboot, poweroff, ...). */
  shutdown?: string;
}

/** The `KEY=VALUE` lines of one sd_notify message. Pure. */
export function notifyFields(message: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of message.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

/** Adds one message to the log. Pure but for the log it is given. */
export function recordNotify(log: NotifyLog, message: string): void {
  const text = message.replace(/\0/g, '').trim();
  if (!text) return;
  log.messages.push(text);
  const f = notifyFields(text);
  if (f.X_SYSTEMD_SHUTDOWN) log.shutdown = f.X_SYSTEMD_SHUTDOWN;
  if (f.X_SYSTEMD_SHUTDOWN && isReboot(f.X_SYSTEMD_SHUTDOWN)) delete log.exitStatus;
  else if (f.EXIT_STATUS !== undefined && /^\d+$/.test(f.EXIT_STATUS)) log.exitStatus = Number(f.EXIT_STATUS);
}

/**
 * How long a notify connection may sit idle once it has sent something before the host closes it.
 * vhost-device-vsock 0.3 does not pass the guest's half-close on, while PID 1 waits for the peer to close
 * a stream notify socket: a host waiting for EOF would stall PID 1 at its first message (background.md).
 * Each message arrives in one write, and PID 1 waits this long for every one of them: 300 ms made a TCG
 * boot several seconds slower than 50 ms (bench/transports.ts).
 */
export const NOTIFY_IDLE_MS = 50;

function notifyServer(path: string, log: NotifyLog): Promise<{ server: Server; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    let buf = '';
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      recordNotify(log, buf);
      socket.destroy();
    };
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      buf += d;
      clearTimeout(timer);
      timer = setTimeout(finish, NOTIFY_IDLE_MS);
    });
    socket.on('end', finish);
    socket.on('error', finish);
    socket.on('close', () => {
      finish();
      sockets.delete(socket);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve({ server, sockets });
    });
  });
}

/** Keeps the last bytes a process writes on stderr, for the message when it fails. */
function stderrOf(child: ChildProcess): () => string {
  let buf = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (buf = (buf + d).slice(-2000)));
  return () => buf.trim().split('\n').slice(-3).join(' | ');
}

/** Waits until path exists (a socket its owner binds), or the owner exits, or timeoutMs pass. */
async function socketUp(
  path: string,
  owner: ChildProcess,
  what: string,
  err: () => string,
  timeoutMs = 10_000,
) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (owner.exitCode !== null || owner.signalCode !== null)
      throw new Error(
        `${what} exited (${owner.exitCode ?? owner.signalCode}) before listening: ${err() || 'no message'}`,
      );
    if (
      await access(path).then(
        () => true,
        () => false,
      )
    )
      return;
    if (Date.now() > end) throw new Error(`${what} did not create ${path} within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** How the device and its listeners fared: what went wrong with them, if anything. */
export interface UserVsockEnd {
  notify: NotifyLog;
  /** Set when the device or journal-remote died on its own while the VM ran. */
  problem?: string;
}

export interface UserVsock {
  paths: UserVsockPaths;
  notify: NotifyLog;
  /** Stops the device, then journal-remote (which writes what it has), then the listener. Never throws. */
  stop(): Promise<UserVsockEnd>;
}

/**
 * startUserVsock for one attempt, or why it could not be had: a device that does not come up is the
 * attempt's outcome (no VM is started), not an exception.
 */
export async function tryUserVsock(
  o: Omit<Parameters<typeof startUserVsock>[0], 'vhostDevice'> & { vhostDevice?: string },
): Promise<UserVsock | { startError: string }> {
  try {
    if (!o.vhostDevice) throw new Error('no vhost-device-vsock binary given');
    return await startUserVsock({ ...o, vhostDevice: o.vhostDevice });
  } catch (e) {
    return { startError: `the user-space vsock device did not start: ${(e as Error).message}` };
  }
}

export async function startUserVsock(o: {
  machine: string;
  /** Where the VM's socket directory goes (short: Unix socket paths are limited). */
  tmp: string;
  vhostDevice: string;
  journalRemote: string;
  /** The test's .journal, written by journal-remote (ours to create: whatever is at its name goes). */
  journal: string;
  env: NodeJS.ProcessEnv;
}): Promise<UserVsock> {
  const paths = userVsockPaths(o.machine, o.tmp);
  // A directory of our own (mkdir fails on anything at its name, a planted symlink included, after rm
  // took away what an earlier run of this machine name left).
  await rm(paths.dir, { recursive: true, force: true });
  await mkdir(paths.dir, { mode: 0o700 });
  await rm(o.journal, { force: true });
  const notify: NotifyLog = { messages: [] };
  let device: ChildProcess | undefined;
  let remote: ChildProcess | undefined;
  let listener: Awaited<ReturnType<typeof notifyServer>> | undefined;
  const problems: string[] = [];
  let stopping = false;
  const watch = (child: ChildProcess, what: string, err: () => string) =>
    child.once('exit', (code, signal) => {
      if (!stopping)
        problems.push(`${what} exited (${code ?? signal}) while the VM ran: ${err() || 'no message'}`);
    });

  const stop = async (): Promise<UserVsockEnd> => {
    stopping = true;
    // The device first: its end closes every connection it relayed, so journal-remote sees each
    // stream's end and has written all of it before it is asked to finish.
    if (device) await killTree(device, 3000);
    if (remote) await killTree(remote, 10_000);
    if (listener) {
      for (const s of listener.sockets) s.end();
      await new Promise((r) => listener!.server.close(r));
    }
    await rm(paths.dir, { recursive: true, force: true }).catch(() => undefined);
    return { notify, ...(problems.length ? { problem: problems.join('; ') } : {}) };
  };

  try {
    listener = await notifyServer(paths.notify, notify);
    remote = startDetached(
      [o.journalRemote, `--output=${o.journal}`, '--split-mode=none', `--listen-raw=${paths.journal}`],
      { env: o.env, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const remoteErr = stderrOf(remote);
    await socketUp(paths.journal, remote, 'systemd-journal-remote', remoteErr);
    device = startDetached(vhostDeviceArgv(o.vhostDevice, paths), {
      env: o.env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const deviceErr = stderrOf(device);
    await socketUp(paths.control, device, 'vhost-device-vsock', deviceErr);
    watch(device, 'vhost-device-vsock', deviceErr);
    watch(remote, 'systemd-journal-remote', remoteErr);
    return { paths, notify, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
