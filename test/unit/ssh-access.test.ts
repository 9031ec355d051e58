/**
 * ssh into a VM over vsock, the parts that need no guest: the ssh argv and its ProxyCommand's quoting (run
 * through a real /bin/sh), the throw-away key (real ssh-keygen), the per-VM record, and `itest ssh` /
 * `itest vsock-proxy` when there is nothing to reach (the real vhost-device-vsock with no guest behind
 * it). A real ssh session into a real VM: test/e2e/demo.test.ts.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeSshKey, readVmRecord, shellQuote, sshArgv, writeVmRecord } from '../../src/run/ssh-access.ts';
import { startUserVsock } from '../../src/run/user-vsock.ts';
import { JOURNAL_REMOTE, VHOST_DEVICE_VSOCK } from '../helpers/standin.ts';
import { ROOT, TSX } from '../helpers/run-tree.ts';

const made: string[] = [];
after(() => Promise.all(made.map((d) => rm(d, { recursive: true, force: true }))));
const tmp = async () => {
  const d = await mkdtemp(join(tmpdir(), 'itest-ssh-'));
  made.push(d);
  return d;
};
const itest = (args: string[]) =>
  spawnSync(process.execPath, ['--import', TSX, join(ROOT, 'src/cli/index.ts'), ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });

describe('ssh over vsock: argv, key and record', () => {
  it("the ProxyCommand's words survive /bin/sh exactly, whatever the paths hold", () => {
    const words = ['/usr/bin/node', "/home/o'brien/it est/cli.js", '$HOME', '`x`', 'a;b', ''];
    const r = spawnSync('/bin/sh', ['-c', `printf '%s\\n' ${words.map(shellQuote).join(' ')}`], {
      encoding: 'utf8',
    });
    assert.deepEqual(r.stdout.split('\n').slice(0, -1), words);
    assert.equal(shellQuote('/plain/path-1.2'), '/plain/path-1.2', 'plain words stay as they are');
  });

  it('ssh: the run key only, no user config or host key memory, the proxy of this itest, a command after --', () => {
    const rec = {
      test: 'T',
      machine: 'itest-t-abc123-1',
      transport: 'vsock-user' as const,
      uds: '/tmp/itest-t-abc123-1.vsock/v',
      key: '/out/.work/.ssh/id_ed25519',
      pid: 1,
    };
    const argv = sshArgv(rec, ['/usr/bin/node', '/x/cli.js'], ['systemctl', 'is-system-running']);
    assert.deepEqual(argv, [
      'ssh',
      '-F',
      'none',
      '-i',
      '/out/.work/.ssh/id_ed25519',
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'StrictHostKeyChecking=no',
      '-o',
      'UserKnownHostsFile=/dev/null',
      '-o',
      'LogLevel=ERROR',
      '-o',
      'ProxyCommand=/usr/bin/node /x/cli.js vsock-proxy /tmp/itest-t-abc123-1.vsock/v 22',
      '-T',
      '--',
      'root@itest-t-abc123-1',
      'systemctl',
      'is-system-running',
    ]);
    assert.ok(!sshArgv(rec, ['node'], []).includes('-T'), 'a shell gets a terminal');
  });

  it('a fresh ed25519 key, private to this user; the record is written afresh, never through a symlink', async () => {
    const dir = await tmp();
    const key = await makeSshKey(dir);
    assert.ok(!('error' in key), JSON.stringify(key));
    assert.match(key.public, /^ssh-ed25519 \S+ itest$/);
    assert.equal(statSync(key.private).mode & 0o077, 0, 'no access for group or others');
    const again = await makeSshKey(dir);
    assert.ok(!('error' in again) && again.public !== key.public, 'a new key each run');

    const work = join(dir, 'work');
    await mkdir(work);
    await writeFile(join(dir, 'victim'), 'precious');
    await symlink(join(dir, 'victim'), join(work, 'vm.json'));
    const rec = { test: 'T', machine: 'm', transport: 'vsock-user' as const, uds: '/u', key: 'k', pid: 7 };
    await writeVmRecord(work, rec);
    assert.equal(readFileSync(join(dir, 'victim'), 'utf8'), 'precious');
    assert.deepEqual(await readVmRecord(work), rec);
  });

  it('itest ssh with no running VM: exit 2 naming the test, the directory and how to start one', async () => {
    const out = await tmp();
    const r = itest(['ssh', 'TEST-01-BASIC', '--output', out]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `^itest: no running VM of TEST-01-BASIC under ${out}: .*itest run --test TEST-01-BASIC --shell`,
      ),
    );
    // A record whose itest process is gone counts as no VM.
    const work = join(out, '.work', 'TEST-01-BASIC');
    await mkdir(work, { recursive: true });
    await writeVmRecord(work, {
      test: 'TEST-01-BASIC',
      machine: 'm',
      transport: 'vsock-user',
      uds: '/u',
      key: 'k',
      pid: 2 ** 22 + 1,
    });
    assert.equal(itest(['ssh', 'TEST-01-BASIC', '--output', out]).status, 2);
  });

  it('vsock-proxy against the real vhost-device-vsock with no guest: a clear error, not a hang', async () => {
    const dir = await tmp();
    const device = VHOST_DEVICE_VSOCK;
    assert.ok(device, 'vhost-device-vsock not on PATH: run scripts/setup-host.sh');
    const uv = await startUserVsock({
      machine: `itest-ssh-${process.pid}`,
      tmp: dir,
      vhostDevice: device,
      journalRemote: JOURNAL_REMOTE,
      journal: join(dir, 'T.journal'),
      env: process.env,
    });
    try {
      const r = itest(['vsock-proxy', uv.paths.uds, '22']);
      assert.equal(r.status, 1, r.stderr);
      assert.match(
        r.stderr,
        /^itest: itest vsock-proxy: (nothing listens on the guest's vsock port 22|the device answered)/,
      );
      const bad = itest(['vsock-proxy', uv.paths.uds, 'ssh']);
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /port must be a vsock port number, not "ssh"/);
    } finally {
      await uv.stop();
    }
  });
});
