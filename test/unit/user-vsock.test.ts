/**
 * The host side of the vsock-user transport with the real vhost-device-vsock and systemd-journal-remote,
 * and no VM: this test plays the guest's side of the device's Unix sockets (what vhost-device-vsock
 * relays a guest's connection to host port P into). End to end with real VMs: test/e2e/demo.test.ts.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, symlink, mkdir, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  NOTIFY_IDLE_MS,
  notifyFields,
  recordNotify,
  startUserVsock,
  type NotifyLog,
} from '../../src/run/user-vsock.ts';
import { listProcesses } from '../../src/util/process.ts';
import { JOURNAL_REMOTE, VHOST_DEVICE_VSOCK } from '../helpers/standin.ts';

const DEVICE = VHOST_DEVICE_VSOCK;
const made: string[] = [];
after(() => Promise.all(made.map((d) => rm(d, { recursive: true, force: true }))));
const tmp = async () => {
  const d = await mkdtemp(join(tmpdir(), 'itest-uv-'));
  made.push(d);
  return d;
};

/** A client of one of the device's Unix sockets, as vhost-device-vsock is for a guest connection. */
function dial(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path, () => resolve(s));
    s.once('error', reject);
  });
}

/** An entry of the journal export format, as journald forwards it. */
const entry = (n: number, message: string) =>
  `__CURSOR=s=0;i=${n}\n__REALTIME_TIMESTAMP=${1_700_000_000_000_000 + n}\n__MONOTONIC_TIMESTAMP=${n}\n` +
  `_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=H\nMESSAGE=${message}\n\n`;

/** The device and listeners of machine's VM under dir, with the real binaries unless vhostDevice says otherwise. */
const start = (dir: string, machine: string, vhostDevice = DEVICE, journal = join(dir, 'T.journal')) =>
  startUserVsock({
    machine,
    tmp: dir,
    vhostDevice,
    journalRemote: JOURNAL_REMOTE,
    journal,
    env: process.env,
  });

const running = async (needle: string) =>
  (await listProcesses()).filter((p) => p.argv.some((a) => a.includes(needle)));

describe('notify messages (pure)', () => {
  it('fields of a message; the last EXIT_STATUS= of any message is the verdict; NULs and blanks dropped', () => {
    assert.deepEqual(notifyFields('READY=1\nSTATUS=Startup finished\n'), {
      READY: '1',
      STATUS: 'Startup finished',
    });
    const log: NotifyLog = { messages: [] };
    recordNotify(log, 'READY=1\n');
    recordNotify(log, '\0\n');
    recordNotify(log, 'EXIT_STATUS=77\n');
    recordNotify(log, 'EXIT_STATUS=oops\n');
    assert.deepEqual(log, { messages: ['READY=1', 'EXIT_STATUS=77', 'EXIT_STATUS=oops'], exitStatus: 77 });
  });

  it('an EXIT_STATUS= sent before a reboot is no verdict; the one at the last stop is (as systemd 257 sends them)', () => {
    const log: NotifyLog = { messages: [] };
    recordNotify(log, 'X_SYSTEMD_SIGNALS_LEVEL=2');
    recordNotify(log, 'EXIT_STATUS=0\nX_SYSTEMD_SHUTDOWN=reboot');
    assert.equal(log.exitStatus, undefined, 'a VM that ends during the reboot has no verdict');
    assert.equal(log.shutdown, 'reboot');
    recordNotify(log, 'X_SYSTEMD_SIGNALS_LEVEL=2');
    recordNotify(log, 'EXIT_STATUS=42\nX_SYSTEMD_SHUTDOWN=poweroff');
    assert.equal(log.exitStatus, 42);
    assert.equal(log.shutdown, 'poweroff');
    // A manager that exits without a shutdown verb (a container, an older systemd): its status stands.
    const plain: NotifyLog = { messages: [] };
    recordNotify(plain, 'EXIT_STATUS=0\nX_SYSTEMD_SHUTDOWN=kexec');
    recordNotify(plain, 'EXIT_STATUS=123');
    assert.equal(plain.exitStatus, 123);
  });
});

describe('the user-space vsock of one VM (real vhost-device-vsock and journal-remote, no guest)', () => {
  it('needs vhost-device-vsock on PATH (scripts/setup-host.sh installs it)', () => {
    assert.ok(DEVICE, 'vhost-device-vsock not on PATH: run scripts/setup-host.sh');
  });

  it('notify: a connection the peer never closes is closed once idle, each message is kept, the journal written', async () => {
    const dir = await tmp();
    const journal = join(dir, 'T.journal');
    const machine = `itest-uv-${process.pid}-1`;
    const uv = await start(dir, machine, DEVICE, journal);
    assert.equal((await running(`${machine}.vsock`)).length, 2, 'the device and journal-remote run');

    // PID 1 through vhost-device-vsock 0.3: no half-close reaches the host, so the host must close.
    const first = await dial(uv.paths.notify);
    const closed = new Promise<number>((r) => {
      const t0 = performance.now();
      first.on('close', () => r(performance.now() - t0));
    });
    first.write('READY=1\n');
    const idleMs = await closed;
    assert.ok(idleMs >= NOTIFY_IDLE_MS - 50 && idleMs < NOTIFY_IDLE_MS + 1500, `closed after ${idleMs} ms`);
    const last = await dial(uv.paths.notify);
    last.write('EXIT_STATUS=123\n');
    await new Promise((r) => last.on('close', r));

    // journald's forwarding: entries and then nothing, the connection left open (a guest that was killed).
    const fwd = await dial(uv.paths.journal);
    fwd.write(entry(1, 'first line') + entry(2, 'the last line before the guest died'));
    await new Promise((r) => setTimeout(r, 500));

    const end = await uv.stop();
    fwd.destroy();
    assert.deepEqual(end, { notify: { messages: ['READY=1', 'EXIT_STATUS=123'], exitStatus: 123 } });
    const text = execFileSync('journalctl', ['--file', journal, '-o', 'cat'], { encoding: 'utf8' });
    assert.deepEqual(text.trim().split('\n'), ['first line', 'the last line before the guest died']);
    assert.deepEqual(await running(`${machine}.vsock`), [], 'nothing outlives stop()');
    assert.equal(existsSync(uv.paths.dir), false, 'the socket directory is gone');
  });

  it('a device that cannot start is an error naming it; nothing is left running; a planted symlink is not followed', async () => {
    const dir = await tmp();
    const machine = `itest-uv-${process.pid}-2`;
    // Someone planted the VM's socket directory as a symlink to a directory of theirs.
    const victim = join(dir, 'victim');
    await mkdir(victim);
    await writeFile(join(victim, 'precious'), 'x');
    await symlink(victim, join(dir, `${machine}.vsock`));
    await assert.rejects(
      start(dir, machine, '/bin/false'),
      /vhost-device-vsock exited \(1\) before listening/,
    );
    assert.deepEqual(await running(`${machine}.vsock`), []);
    assert.ok(existsSync(join(victim, 'precious')), 'the symlink target is untouched');
  });

  it('a device that dies while the VM runs is reported by stop()', async () => {
    const dir = await tmp();
    const machine = `itest-uv-${process.pid}-3`;
    const uv = await start(dir, machine);
    const [device] = (await running(`${machine}.vsock`)).filter((p) =>
      p.argv[0]!.endsWith('vhost-device-vsock'),
    );
    assert.ok(device);
    process.kill(device.pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    const end = await uv.stop();
    assert.match(end.problem ?? '', /^vhost-device-vsock exited \(SIGKILL\) while the VM ran/);
  });
});
