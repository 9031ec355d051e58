import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dialectFor } from '../../src/mkosi/dialect.ts';
import { vmArgv, type Transport, type VmConfig } from '../../src/mkosi/vm-argv.ts';
import { userVsockPaths } from '../../src/qemu/user-vsock.ts';
import { testSpec } from '../helpers/spec.ts';
import { buildArgv } from '../../src/image/ensure-image.ts';

const spec = testSpec({
  name: 'TEST-01-BASIC',
  unit: 'TEST-01-BASIC.service',
  timeout: 60,
  kernelCmdline: ['quiet'],
  credentials: { 'my.cred': 'two words\nand a line' },
  mkosiArgs: ['--runtime-network=none'],
  qemuArgs: ['-device', 'virtio-rng-pci'],
});

function plan(version: string, transport: Transport): VmConfig {
  return {
    ...(transport === 'vsock-user'
      ? { userVsock: userVsockPaths('itest-test-01-basic-abc123-1', '/tmp') }
      : {}),
    mkosi: ['mkosi'],
    dialect: dialectFor(version),
    configDir: '/cfg',
    imageDir: '/img',
    machine: 'itest-test-01-basic-abc123-1',
    transport,
    accel: 'tcg',
    cpus: 1,
    firmware: 'linux',
    statusFile: '/out/.work/T/status',
    journalTarget: transport === 'serial' ? '/out/.work/T/journal.export' : '/out/T.journal',
  };
}

/** Decodes every -smbios credential back into name -> text. */
function credentials(argv: string[]): Map<string, string> {
  const out = new Map<string, string>();
  argv.forEach((a, i) => {
    if (argv[i - 1] !== '-smbios') return;
    const m = /^type=11,value=io\.systemd\.credential\.binary:([^=]+)=(.*)$/.exec(a);
    assert.ok(m, a);
    out.set(m[1]!, Buffer.from(m[2]!, 'base64').toString());
  });
  return out;
}

describe('mkosi dialects', () => {
  it('maps versions to dialects and refuses mkosi < 24', () => {
    assert.equal(dialectFor('24.3').verb, 'qemu');
    assert.equal(dialectFor('25.3').verb, 'vm');
    assert.equal(dialectFor('27.1').flags.ram, '--ram');
    assert.equal(dialectFor('25.3').qemuArgsSeparator, false);
    assert.equal(dialectFor('27.1').qemuArgsSeparator, true);
    assert.throws(() => dialectFor('23.1'), /too old/);
  });

  it('mkosi 24, serial: --qemu-* flags, qemu verb, no separator, serial ports and journal export unit', () => {
    const argv = vmArgv(spec, plan('24.3', 'serial'));
    const verb = argv.indexOf('qemu');
    assert.ok(verb > 0);
    const before = argv.slice(0, verb);
    const after = argv.slice(verb + 1);
    for (const f of [
      '--qemu-kvm=no',
      '--qemu-vsock=no',
      '--qemu-mem=1024M',
      '--qemu-smp=1',
      '--qemu-firmware=linux',
      '--machine=itest-test-01-basic-abc123-1',
      '--ephemeral=yes',
      '--runtime-network=none',
    ]) {
      assert.ok(before.includes(f), `${f} in ${before.join(' ')}`);
    }
    assert.ok(!before.some((a) => a.startsWith('--console')), 'mkosi 24 has no --console');
    assert.ok(!before.some((a) => a.startsWith('--forward-journal')));
    assert.deepEqual(before.slice(0, 5), ['mkosi', '--directory', '/cfg', '--output-dir', '/img']);
    // A panic ends QEMU through pvpanic; reboots stay allowed (no -no-reboot).
    assert.deepEqual(after.slice(0, 4), ['-device', 'pvpanic', '-action', 'panic=exit-failure']);
    assert.ok(!argv.includes('-no-reboot'));
    assert.ok(!after.includes('--'));
    assert.ok(after.includes('file,id=itest-status,path=/out/.work/T/status'));
    assert.ok(after.includes('file,id=itest-journal,path=/out/.work/T/journal.export'));
    assert.ok(after.includes('virtserialport,bus=itest-serial.0,chardev=itest-journal,name=itest.journal'));
    assert.deepEqual(after.slice(-2), ['-device', 'virtio-rng-pci']);
    const kcl = before.find((a) => a.startsWith('--kernel-command-line-extra='))!;
    assert.equal(
      kcl,
      '--kernel-command-line-extra=systemd.unit=TEST-01-BASIC.service systemd.wants=itest-journal-export.service panic=-1 systemd.crash_action=poweroff sysrq_always_enabled=1 quiet',
    );
    const creds = credentials(after);
    const dropin = creds.get('systemd.unit-dropin.TEST-01-BASIC.service')!;
    assert.match(dropin, /SuccessAction=exit\nSuccessActionExitStatus=123\nFailureAction=exit/);
    // The manager report (boots and PID 1's exit status) and, on serial, the journal export after a soft reboot.
    assert.match(
      dropin,
      /^Wants=basic\.target itest-manager-report\.service itest-journal-export\.service$/m,
    );
    assert.match(dropin, /^After=basic\.target itest-manager-report\.service$/m);
    assert.match(creds.get('systemd.extra-unit.itest-manager-report.service')!, /^IgnoreOnIsolate=yes$/m);
    assert.match(dropin, /StandardOutput=journal\+console/);
    assert.match(
      dropin,
      /ExecStopPost=.*SERVICE_RESULT=\$SERVICE_RESULT EXIT_CODE=\$EXIT_CODE EXIT_STATUS=\$EXIT_STATUS.*\/dev\/virtio-ports\/itest\.status/,
    );
    assert.match(
      creds.get('systemd.extra-unit.itest-journal-export.service')!,
      /journalctl -o export -f --no-tail -b --cursor-file=\/run\/itest-journal\.cursor > \/dev\/virtio-ports\/itest\.journal/,
    );
    assert.match(creds.get('systemd.extra-unit.itest-emergency-exit.service')!, /FailureAction=exit/);
    assert.match(creds.get('systemd.unit-dropin.emergency.target')!, /Wants=itest-emergency-exit\.service/);
    assert.equal(creds.get('my.cred'), 'two words\nand a line', 'multi-line credential survives intact');
  });

  it('mkosi 25, vsock: new flag names, vm verb, --console=native, forward-journal, no journal export unit', () => {
    const argv = vmArgv(spec, plan('25.3', 'vsock'));
    const verb = argv.indexOf('vm');
    const before = argv.slice(0, verb);
    const after = argv.slice(verb + 1);
    for (const f of [
      '--kvm=no',
      '--vsock=yes',
      '--ram=1024M',
      '--cpus=1',
      '--firmware=linux',
      '--console=native',
      '--forward-journal=/out/T.journal',
    ]) {
      assert.ok(before.includes(f), `${f} in ${before.join(' ')}`);
    }
    assert.ok(!before.some((a) => a.startsWith('--qemu-')));
    assert.equal(after[0], '-device', 'mkosi 25 takes QEMU args as REMAINDER: no separator');
    assert.ok(!after.some((a) => a.includes('itest-journal')));
    assert.ok(!credentials(after).has('systemd.extra-unit.itest-journal-export.service'));
    assert.ok(!before.find((a) => a.startsWith('--kernel-command-line-extra='))!.includes('systemd.wants='));
    // The status port stays in vsock mode too: it explains failures that mkosi's exit code cannot.
    assert.ok(after.includes('virtserialport,bus=itest-serial.0,chardev=itest-status,name=itest.status'));
  });

  // vsock-user on each dialect: mkosi's own vsock off (it would need /dev/vhost-vsock), the device and its
  // shared memory on QEMU's command line, the guest pointed at host CID 2 by credentials; serial journal off.
  for (const [version, verb, flags] of [
    ['24.3', 'qemu', ['--qemu-vsock=no', '--qemu-mem=1024M']],
    ['25.3', 'vm', ['--vsock=no', '--ram=1024M']],
    ['27.1', 'vm', ['--vsock=no', '--ram=1024M']],
  ] as const)
    it(`mkosi ${version}, vsock-user: vhost-user-vsock-pci on a shared memfd, notify and journal credentials`, () => {
      const argv = vmArgv(spec, plan(version, 'vsock-user'));
      const at = argv.indexOf(verb);
      const before = argv.slice(0, at);
      const after = argv.slice(at + 1);
      for (const f of flags) assert.ok(before.includes(f), `${f} in ${before.join(' ')}`);
      assert.ok(!before.some((a) => a.startsWith('--forward-journal')), 'no journal-remote of mkosi');
      const d = '/tmp/itest-test-01-basic-abc123-1.vsock';
      const qemu = after.join(' ');
      assert.ok(
        qemu.includes(
          '-object memory-backend-memfd,id=itest-mem,size=1024M,share=on -machine memory-backend=itest-mem ' +
            `-chardev socket,id=itest-vsock,path=${d}/vhost-user -device vhost-user-vsock-pci,chardev=itest-vsock`,
        ),
        qemu,
      );
      const creds = credentials(after);
      assert.equal(creds.get('vmm.notify_socket'), 'vsock-stream:2:10001');
      assert.equal(creds.get('journal.forward_to_socket'), 'vsock-stream:2:10002');
      assert.ok(!creds.has('systemd.extra-unit.itest-journal-export.service'));
      assert.ok(!after.some((a) => a.includes('itest-journal')), 'no serial journal port');
      assert.ok(after.includes('virtserialport,bus=itest-serial.0,chardev=itest-status,name=itest.status'));
    });

  it('vsock-user sockets: one directory per machine, short paths, an error naming TMPDIR when too long', () => {
    const a = userVsockPaths('itest-a-1', '/tmp');
    const b = userVsockPaths('itest-b-1', '/tmp');
    assert.deepEqual(a, {
      dir: '/tmp/itest-a-1.vsock',
      control: '/tmp/itest-a-1.vsock/vhost-user',
      uds: '/tmp/itest-a-1.vsock/v',
      notify: '/tmp/itest-a-1.vsock/v_10001',
      journal: '/tmp/itest-a-1.vsock/v_10002',
    });
    assert.ok(
      Object.values(a).every((p) => !Object.values(b).includes(p)),
      'no socket shared',
    );
    assert.throws(
      () => userVsockPaths('itest-a-1', `/${'x'.repeat(100)}`),
      /longer than a Unix socket path.*TMPDIR/,
    );
    assert.throws(
      () => vmArgv(spec, { ...plan('25.3', 'vsock-user'), userVsock: undefined }),
      /needs the sockets/,
    );
  });

  it('mkosi 27: `--` between the verb and QEMU arguments', () => {
    const argv = vmArgv(spec, plan('27.1', 'serial'));
    const verb = argv.indexOf('vm');
    assert.equal(argv[verb + 1], '--');
    assert.deepEqual(argv.slice(verb + 2, verb + 4), ['-device', 'pvpanic']);
  });

  it('accel and cpus follow the plan; no firmware flag unless asked; commas in paths are escaped for QEMU', () => {
    const p = {
      ...plan('24.3', 'serial'),
      accel: 'kvm' as const,
      cpus: 2,
      firmware: undefined,
      statusFile: '/a,b/status',
    };
    const argv = vmArgv({ ...spec, ram: 1536 * 1024 ** 2 }, p);
    assert.ok(argv.includes('--qemu-kvm=yes'));
    assert.ok(argv.includes('--qemu-smp=2'));
    assert.ok(argv.includes('--qemu-mem=1536M'));
    assert.ok(!argv.some((a) => a.startsWith('--qemu-firmware')));
    assert.ok(argv.includes('file,id=itest-status,path=/a,,b/status'));
  });

  it('--shell: default target with the test wanted, no exit actions, status line kept', () => {
    const argv = vmArgv(spec, { ...plan('24.3', 'serial'), shell: true });
    const kcl = argv.find((a) => a.startsWith('--kernel-command-line-extra='))!;
    assert.match(kcl, /=systemd\.wants=TEST-01-BASIC\.service /);
    assert.ok(!kcl.includes('systemd.unit='));
    const dropin = credentials(argv).get('systemd.unit-dropin.TEST-01-BASIC.service')!;
    assert.ok(!dropin.includes('SuccessAction') && !dropin.includes('FailureAction'), dropin);
    assert.match(dropin, /ExecStopPost=.*itest\.status/);
  });

  it('adds a QMP socket for the hang report when asked', () => {
    const argv = vmArgv(spec, { ...plan('24.3', 'serial'), qmpSocket: '/tmp/itest-x.qmp' });
    const i = argv.indexOf('-qmp');
    assert.equal(argv[i + 1], 'unix:/tmp/itest-x.qmp,server=on,wait=off');
    assert.ok(!vmArgv(spec, plan('24.3', 'serial')).includes('-qmp'));
  });

  it('a target unit gets no [Service] section in its drop-in', () => {
    const creds = credentials(vmArgv({ ...spec, unit: 'x.target' }, plan('24.3', 'serial')));
    assert.ok(!creds.get('systemd.unit-dropin.x.target')!.includes('[Service]'));
  });

  it('builds the image with --force into the cache build directory', () => {
    assert.deepEqual(buildArgv(['mkosi'], '/cfg', '/build'), [
      'mkosi',
      '--directory',
      '/cfg',
      '--output-dir',
      '/build',
      '--force',
      'build',
    ]);
  });
});
