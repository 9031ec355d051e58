/**
 * Runner setup: the plan is exact argument vectors (no shell), and the executor, run against a fake
 * command runner and fake device checks (no sudo, no udev), says per device whether it is usable and why.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEVICES,
  UDEV_RULE_PATH,
  allowUserNamespaces,
  aptInstallSteps,
  userNamespaceSteps,
  openDevice,
  runnerSetupSteps,
  setupRunner,
  udevRule,
  type CommandRunner,
} from '../../src/action/runner/setup.ts';
import { installMkosiModules } from '../../src/action/runner/ready.ts';
import type { MkosiRuntime } from '../../src/host/mkosi-needs.ts';
import type { ProbeOptions } from '../../src/host/mkosi-runtime-probe.ts';
import type { CommandResult } from '../../src/util/process.ts';

const RULE =
  'KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"\n' +
  'KERNEL=="vhost-vsock", GROUP="kvm", MODE="0666", OPTIONS+="static_node=vhost-vsock"\n' +
  'KERNEL=="vhost-net", GROUP="kvm", MODE="0666", OPTIONS+="static_node=vhost-net"\n';

const ROOT_PLAN = [
  ['mkdir', '-p', '/etc/udev/rules.d'],
  ['tee', '/etc/udev/rules.d/99-itest-kvm.rules'],
  ['udevadm', 'control', '--reload-rules'],
  ['modprobe', 'vhost_vsock'],
  ['modprobe', 'vhost_net'],
  ['udevadm', 'trigger', '--settle', '--name-match=kvm'],
  ['udevadm', 'trigger', '--settle', '--name-match=vhost-vsock'],
  ['udevadm', 'trigger', '--settle', '--name-match=vhost-net'],
  ['chmod', '0666', '/dev/kvm'],
  ['chmod', '0666', '/dev/vhost-vsock'],
  ['chmod', '0666', '/dev/vhost-net'],
];

describe('runner setup plan', () => {
  it('the udev rule opens kvm, vhost-vsock and vhost-net (GitHub 99-kvm4all rule, for all three)', () => {
    assert.equal(udevRule(), RULE);
    assert.equal(UDEV_RULE_PATH, '/etc/udev/rules.d/99-itest-kvm.rules');
  });

  it('as root: the exact argument vectors, the rule on tee stdin', () => {
    const steps = runnerSetupSteps({ root: true });
    assert.deepEqual(
      steps.map((s) => s.argv),
      ROOT_PLAN,
    );
    assert.deepEqual(
      steps.filter((s) => s.input !== undefined).map((s) => [s.argv[0], s.input]),
      [['tee', RULE]],
    );
    assert.deepEqual(
      steps.filter((s) => s.ifExists).map((s) => s.argv[0]),
      ['udevadm', 'udevadm', 'udevadm', 'chmod', 'chmod', 'chmod'],
      'trigger and chmod only act on nodes that exist',
    );
    for (const s of steps)
      assert.ok(
        s.argv.every((a) => !/[;&|`$]/.test(a)),
        `no shell in ${s.argv.join(' ')}`,
      );
  });

  it('not root: the same vectors behind sudo -n', () => {
    assert.deepEqual(
      runnerSetupSteps({ root: false }).map((s) => s.argv),
      ROOT_PLAN.map((a) => ['sudo', '-n', ...a]),
    );
  });
});

const ok = (): CommandResult => ({ code: 0, signal: null, stdout: '', stderr: '' });
const fail = (code: number, stderr: string): CommandResult => ({ code, signal: null, stdout: '', stderr });

/** A fake host: which nodes exist and open, and what each command does to them. */
function fakeHost(
  nodes: Record<string, 'missing' | 'denied' | 'open'>,
  behave: (argv: string[]) => CommandResult = () => ok(),
) {
  const ran: { argv: string[]; input?: string }[] = [];
  const run: CommandRunner = async (argv, opts) => {
    ran.push({ argv, ...(opts.input !== undefined ? { input: opts.input } : {}) });
    const r = behave(argv);
    if (r.code !== 0) return r;
    const cmd = argv[0] === 'sudo' ? argv.slice(2) : argv;
    if (cmd[0] === 'modprobe') {
      const dev = DEVICES.find((d) => d.module === cmd[1])!.path;
      if (nodes[dev] === 'missing') nodes[dev] = 'denied';
    }
    if (cmd[0] === 'chmod') nodes[cmd[2]!] = 'open';
    return r;
  };
  const check = async (path: string) =>
    ({ missing: 'does not exist', denied: 'permission denied (mode 0660, owner 0:993)', open: undefined })[
      nodes[path]!
    ];
  return { run, check, ran };
}

describe('runner setup executor (fake command runner)', () => {
  it('everything usable already: no command runs, no sudo', async () => {
    const h = fakeHost({ '/dev/kvm': 'open', '/dev/vhost-vsock': 'open', '/dev/vhost-net': 'open' });
    const lines: string[] = [];
    const r = await setupRunner((l) => lines.push(l), { run: h.run, check: h.check, root: false });
    assert.equal(h.ran.length, 0);
    assert.equal(r.alreadyUsable, true);
    assert.deepEqual(Object.values(r.devices), [
      { usable: true, detail: 'usable (already)' },
      { usable: true, detail: 'usable (already)' },
      { usable: true, detail: 'usable (already)' },
    ]);
    assert.deepEqual(lines, [
      'runner setup: /dev/kvm usable, /dev/vhost-vsock usable, /dev/vhost-net usable',
    ]);
  });

  it('a runner with passwordless sudo: every step runs, modules load, all three usable', async () => {
    const h = fakeHost({ '/dev/kvm': 'denied', '/dev/vhost-vsock': 'missing', '/dev/vhost-net': 'denied' });
    const r = await setupRunner(() => {}, { run: h.run, check: h.check, root: false });
    assert.deepEqual(
      h.ran.map((c) => c.argv),
      ROOT_PLAN.map((a) => ['sudo', '-n', ...a]),
    );
    assert.equal(h.ran[1]!.input, RULE);
    assert.deepEqual(r.failures, []);
    assert.ok(Object.values(r.devices).every((d) => d.usable && d.detail === 'usable'));
  });

  it('sudo wants a password: asked once, every device says why it is not usable', async () => {
    const h = fakeHost(
      { '/dev/kvm': 'denied', '/dev/vhost-vsock': 'missing', '/dev/vhost-net': 'denied' },
      () => fail(1, 'sudo: a password is required\n'),
    );
    const lines: string[] = [];
    const r = await setupRunner((l) => lines.push(l), { run: h.run, check: h.check, root: false });
    assert.equal(h.ran.length, 1, 'no second sudo after the first refusal');
    const why = 'sudo -n needs a password (no passwordless sudo for this user)';
    assert.deepEqual(r.devices['/dev/kvm'], {
      usable: false,
      detail: `permission denied (mode 0660, owner 0:993); \`sudo -n mkdir -p /etc/udev/rules.d\`: ${why}`,
    });
    assert.equal(r.devices['/dev/vhost-vsock']!.usable, false);
    assert.match(r.devices['/dev/vhost-vsock']!.detail, /^does not exist; `sudo -n mkdir .*needs a password/);
    assert.match(lines[0]!, /\/dev\/kvm NOT usable \(permission denied .*sudo -n needs a password/);
    assert.match(lines[1]!, /^runner setup: \d+ step\(s\) failed:\n {2}sudo -n mkdir/);
  });

  it('a failing step is reported against its device; the others still end usable', async () => {
    const h = fakeHost(
      { '/dev/kvm': 'denied', '/dev/vhost-vsock': 'missing', '/dev/vhost-net': 'denied' },
      (argv) =>
        argv.includes('vhost_vsock')
          ? fail(1, 'modprobe: FATAL: Module vhost_vsock not found in directory /lib/modules/6.8.0-azure\n')
          : ok(),
    );
    const lines: string[] = [];
    const r = await setupRunner((l) => lines.push(l), { run: h.run, check: h.check, root: true });
    assert.deepEqual(r.devices['/dev/kvm'], { usable: true, detail: 'usable' });
    assert.deepEqual(r.devices['/dev/vhost-net'], { usable: true, detail: 'usable' });
    assert.deepEqual(r.devices['/dev/vhost-vsock'], {
      usable: false,
      detail:
        'does not exist; `modprobe vhost_vsock`: exit 1: modprobe: FATAL: Module vhost_vsock not found in directory /lib/modules/6.8.0-azure',
    });
    assert.ok(
      !h.ran.some((c) => c.argv.includes('/dev/vhost-vsock') || c.argv.includes('--name-match=vhost-vsock')),
      'no trigger or chmod of a node that does not exist',
    );
    assert.deepEqual(r.failures, [
      'modprobe vhost_vsock: exit 1: modprobe: FATAL: Module vhost_vsock not found in directory /lib/modules/6.8.0-azure',
    ]);
    assert.match(
      lines.join('\n'),
      /\/dev\/kvm usable, \/dev\/vhost-vsock NOT usable \(does not exist; `modprobe/,
    );
  });

  it('no KVM in the hardware: says so instead of blaming a step', async () => {
    const h = fakeHost({ '/dev/kvm': 'missing', '/dev/vhost-vsock': 'open', '/dev/vhost-net': 'open' });
    const r = await setupRunner(() => {}, { run: h.run, check: h.check, root: true });
    assert.deepEqual(r.devices['/dev/kvm'], {
      usable: false,
      detail: 'does not exist; no hardware virtualization on this runner (or kvm_intel/kvm_amd not loaded)',
    });
  });

  it('sudo missing altogether is named', async () => {
    const h = fakeHost(
      { '/dev/kvm': 'denied', '/dev/vhost-vsock': 'open', '/dev/vhost-net': 'open' },
      () => ({
        ...fail(1, ''),
        code: null,
        spawnError: Object.assign(new Error('spawn sudo ENOENT'), { code: 'ENOENT' }),
      }),
    );
    const r = await setupRunner(() => {}, { run: h.run, check: h.check, root: false });
    assert.match(r.devices['/dev/kvm']!.detail, /: sudo is not installed$/);
    assert.equal(h.ran.length, 1);
  });

  it('openDevice says why a real node cannot be opened', async () => {
    assert.equal(await openDevice('/dev/null'), undefined);
    assert.equal(await openDevice('/dev/itest-no-such-device'), 'does not exist');
  });
});

describe('unprivileged user namespaces for mkosi (Ubuntu 24.04 AppArmor restriction)', () => {
  const sysctls = (values: Record<string, string>) => async (path: string) => values[path];
  const RESTRICTED = {
    '/proc/sys/kernel/apparmor_restrict_unprivileged_userns': '1\n',
    '/proc/sys/kernel/apparmor_restrict_unprivileged_unconfined': '1\n',
  };

  it('lifts only the restrictions that are set, through sudo -n when not root', async () => {
    assert.deepEqual(await userNamespaceSteps({ root: false, read: sysctls(RESTRICTED) }), [
      ['sudo', '-n', 'sysctl', '--ignore', '--write', 'kernel.apparmor_restrict_unprivileged_userns=0'],
      ['sudo', '-n', 'sysctl', '--ignore', '--write', 'kernel.apparmor_restrict_unprivileged_unconfined=0'],
    ]);
    assert.deepEqual(
      await userNamespaceSteps({
        root: true,
        read: sysctls({ '/proc/sys/kernel/apparmor_restrict_unprivileged_userns': '0\n' }),
      }),
      [],
    );
    // Debian and older kernels: no such sysctl, nothing to do.
    assert.deepEqual(await userNamespaceSteps({ root: false, read: sysctls({}) }), []);
  });

  it('reports a refused sudo instead of failing', async () => {
    const ran: string[][] = [];
    const lines: string[] = [];
    const failures = await allowUserNamespaces((l) => lines.push(l), {
      root: false,
      read: sysctls(RESTRICTED),
      run: async (argv) => {
        ran.push(argv);
        return {
          code: 1,
          signal: null,
          stdout: '',
          stderr: 'sudo: a password is required\n',
        } as CommandResult;
      },
    });
    assert.equal(ran.length, 2);
    assert.equal(failures.length, 2);
    assert.match(failures[0]!, /sudo -n needs a password/);
    assert.match(lines.join('\n'), /could not allow unprivileged user namespaces, mkosi may fail/);
  });
});

describe('Python modules of a mkosi release (pefile for mkosi 26+, installed with apt)', () => {
  const MKOSI = ['/opt/hostedtoolcache/mkosi/26.0.0/x64/bin/mkosi'];
  const INSTALL = [
    'apt-get',
    'install',
    '-y',
    '-q',
    '--no-install-recommends',
    '-o',
    'DPkg::Lock::Timeout=120',
    'python3-pefile',
  ];
  const python = (pefile: string | null) => ({
    executable: '/usr/bin/python3',
    version: '3.12.3',
    modules: { pefile },
  });
  const MISSING = "ModuleNotFoundError: No module named 'pefile'";
  /** What the host probe says: the upstream launcher's python3, which imports pefile or not. */
  const runtime = (pefile: string | null, over: Partial<MkosiRuntime> = {}): MkosiRuntime => ({
    interpreter: { ...python(pefile), how: 'launcher' },
    helper: python(pefile),
    tools: {},
    ms: 40,
    ...over,
  });

  function fake(rt: MkosiRuntime, behave: (argv: string[]) => CommandResult = () => ok()) {
    const probed: { mkosi: string[]; opts: ProbeOptions }[] = [];
    const ran: string[][] = [];
    const lines: string[] = [];
    const warnings: string[] = [];
    const install = (version: string, root: boolean) =>
      installMkosiModules(
        { command: MKOSI, version },
        (l) => lines.push(l),
        (w) => warnings.push(w),
        {
          env: { PATH: '/usr/bin' },
          configDir: '/src/mkosi',
          root,
          probe: async (mkosi, opts = {}) => (probed.push({ mkosi, opts }), rt),
          run: async (argv) => (ran.push(argv), behave(argv)),
        },
      );
    return { probed, ran, lines, warnings, install };
  }

  it('the plan: the lists, then the package, argument vectors behind sudo -n when not root', () => {
    assert.deepEqual(aptInstallSteps({ root: true, packages: ['python3-pefile'] }), [
      ['apt-get', 'update', '-q'],
      INSTALL,
    ]);
    const steps = aptInstallSteps({ root: false, packages: ['python3-pefile'] });
    assert.deepEqual(steps, [
      ['sudo', '-n', 'apt-get', 'update', '-q'],
      ['sudo', '-n', ...INSTALL],
    ]);
    for (const argv of steps)
      assert.ok(
        argv.every((a) => !/[;&|`$]/.test(a)),
        `no shell in ${argv.join(' ')}`,
      );
  });

  it('mkosi 26 without pefile: installs python3-pefile and says so', async () => {
    const h = fake(runtime(MISSING));
    assert.deepEqual(await h.install('26.0', false), ['python3-pefile']);
    assert.deepEqual(h.probed, [
      {
        mkosi: MKOSI,
        opts: { modules: ['pefile'], tools: [], env: { PATH: '/usr/bin' }, configDir: '/src/mkosi' },
      },
    ]);
    assert.deepEqual(h.ran, [
      ['sudo', '-n', 'apt-get', 'update', '-q'],
      ['sudo', '-n', ...INSTALL],
    ]);
    assert.deepEqual(h.warnings, []);
    assert.equal(h.lines.length, 2);
    assert.match(
      h.lines[0]!,
      /^runner setup: Python module pefile missing \(ModuleNotFoundError: .*\/usr\/bin\/python3/,
    );
    assert.equal(
      h.lines[1],
      `runner setup: installed python3-pefile for mkosi 26.0 (sudo -n ${INSTALL.join(' ')})`,
    );
  });

  it('as root: no sudo', async () => {
    const h = fake(runtime(MISSING));
    await h.install('27.1', true);
    assert.deepEqual(h.ran, [['apt-get', 'update', '-q'], INSTALL]);
  });

  it('nothing to do: mkosi 24 and 25, pefile present, a tools tree, or the interpreter unknown', async () => {
    for (const [version, rt] of [
      ['24.3', runtime(MISSING)],
      ['25.3', runtime(MISSING)],
      ['26.0', runtime(null)],
      ['26.0', runtime(MISSING, { toolsTree: true })],
      ['26.0', { tools: {}, error: 'python3: not found', ms: 3 }],
    ] as const) {
      const h = fake(rt);
      assert.deepEqual(await h.install(version, false), [], version);
      assert.deepEqual(h.ran, [], `${version}: no command runs`);
      assert.deepEqual([h.lines, h.warnings], [[], []], version);
      if (Number.parseInt(version, 10) < 26)
        assert.equal(h.probed.length, 0, `${version}: needs no module, nothing probed`);
    }
  });

  it('a stale or broken package list does not stop the install', async () => {
    const h = fake(runtime(MISSING), (argv) =>
      argv.includes('update') ? fail(100, 'E: The repository ... no longer has a Release file.\n') : ok(),
    );
    assert.deepEqual(await h.install('26.0', true), ['python3-pefile']);
    assert.equal(h.ran.length, 2);
    assert.deepEqual(h.warnings, []);
    assert.match(
      h.lines[1]!,
      /^runner setup: installed python3-pefile .*; before it, apt-get update -q: exit 100: E: The repository/,
    );
  });

  it('sudo wants a password: asked once, a warning names the package', async () => {
    const h = fake(runtime(MISSING), () => fail(1, 'sudo: a password is required\n'));
    assert.deepEqual(await h.install('26.0', false), []);
    assert.equal(h.ran.length, 1, 'no second sudo after the first refusal');
    assert.equal(h.warnings.length, 1);
    assert.equal(
      h.warnings[0],
      'runner setup: could not install python3-pefile, which mkosi 26.0 needs (Python module pefile): ' +
        'sudo -n apt-get update -q: sudo -n needs a password (no passwordless sudo for this user). ' +
        'The host check will stop and name the command to install it',
    );
  });

  it('a failed install is a warning with the command and why', async () => {
    const h = fake(runtime(MISSING), (argv) =>
      argv.includes('install') ? fail(100, 'E: Unable to locate package python3-pefile\n') : ok(),
    );
    assert.deepEqual(await h.install('26.0', true), []);
    assert.match(
      h.warnings[0]!,
      new RegExp(
        `could not install python3-pefile, .*: ${INSTALL.join(' ')}: exit 100: E: Unable to locate package python3-pefile\\.`,
      ),
    );
  });
});
