/**
 * Opens KVM, vhost-vsock and vhost-net to the job's user on a runner, the way GitHub's changelog for
 * hardware-accelerated runners and mkosi's own setup action do it: a udev rule giving the nodes mode 0666,
 * reload and trigger udev, load the vhost modules, chmod as a backstop; through `sudo -n` when not root.
 *
 * `runnerSetupSteps` is the plan (pure: argument vectors, never shell strings); `setupRunner` runs it with an
 * injected command runner and reports, per device, usable or not and why. Nothing here is fatal: without
 * the devices the engine falls back to TCG and the serial transport. The same style for the user namespace
 * sysctls (userNamespaceSteps, allowUserNamespaces) and for apt packages (aptInstallSteps, aptInstall).
 */
import { constants } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { runCommand, type CommandResult } from '../../util/process.ts';

export interface Device {
  path: string;
  /** The kernel module that creates the node (none for kvm: kvm_intel/kvm_amd load at boot when usable). */
  module?: string;
}

export const DEVICES: readonly Device[] = [
  { path: '/dev/kvm' },
  { path: '/dev/vhost-vsock', module: 'vhost_vsock' },
  { path: '/dev/vhost-net', module: 'vhost_net' },
];

export const UDEV_RULE_PATH = '/etc/udev/rules.d/99-itest-kvm.rules';

const node = (path: string) => path.slice('/dev/'.length);

/** The udev rule: every device node world-accessible (GitHub's documented 99-kvm4all rule, for all three). */
export function udevRule(devices: readonly Device[] = DEVICES): string {
  return devices
    .map(
      (d) => `KERNEL=="${node(d.path)}", GROUP="kvm", MODE="0666", OPTIONS+="static_node=${node(d.path)}"\n`,
    )
    .join('');
}

export interface SetupStep {
  argv: string[];
  /** Standard input (the rule text for tee). */
  input?: string;
  /** The devices this step is for (all of them for the common steps). */
  devices: string[];
  /** Skipped when the device node does not exist (udev trigger and chmod have nothing to act on). */
  ifExists?: boolean;
}

/** The plan, in order. Not root: every command through `sudo -n` (fails at once instead of asking). */
export function runnerSetupSteps(p: { root: boolean; devices?: readonly Device[] }): SetupStep[] {
  const devices = p.devices ?? DEVICES;
  const all = devices.map((d) => d.path);
  const priv = (argv: string[]) => (p.root ? argv : ['sudo', '-n', ...argv]);
  const steps: SetupStep[] = [
    { argv: priv(['mkdir', '-p', '/etc/udev/rules.d']), devices: all },
    {
      argv: priv(['tee', UDEV_RULE_PATH]),
      input: udevRule(devices),
      devices: all,
    },
    { argv: priv(['udevadm', 'control', '--reload-rules']), devices: all },
  ];
  for (const d of devices)
    if (d.module) steps.push({ argv: priv(['modprobe', d.module]), devices: [d.path] });
  for (const d of devices)
    steps.push({
      argv: priv(['udevadm', 'trigger', '--settle', `--name-match=${node(d.path)}`]),
      devices: [d.path],
      ifExists: true,
    });
  // The rule only acts on udev events; a node whose mode was reset meanwhile still opens after this.
  for (const d of devices)
    steps.push({ argv: priv(['chmod', '0666', d.path]), devices: [d.path], ifExists: true });
  return steps;
}

export type CommandRunner = (
  argv: string[],
  opts: { input?: string; timeoutMs: number },
) => Promise<CommandResult>;
/** undefined when the device opens read-write; otherwise why not. */
export type DeviceCheck = (path: string) => Promise<string | undefined>;

export interface DeviceState {
  usable: boolean;
  /** "usable", or why not: the open error and the failed steps for this device. */
  detail: string;
}

export interface RunnerSetup {
  devices: Record<string, DeviceState>;
  /** Steps that failed, each as "<command>: <why>". */
  failures: string[];
  /** True when every device was usable before anything ran (no sudo needed). */
  alreadyUsable: boolean;
}

/** Opens the device read-write, the way QEMU will. */
export async function openDevice(path: string): Promise<string | undefined> {
  try {
    await (await open(path, constants.O_RDWR)).close();
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'does not exist';
    if (code === 'EACCES' || code === 'EPERM') {
      const s = await stat(path).catch(() => undefined);
      return s
        ? `permission denied (mode ${(s.mode & 0o777).toString(8).padStart(4, '0')}, owner ${s.uid}:${s.gid})`
        : 'permission denied';
    }
    return `cannot open: ${(e as Error).message}`;
  }
}

/** Why a step failed, in words; undefined when it succeeded. */
export function stepFailure(r: CommandResult, viaSudo: boolean): string | undefined {
  if (r.spawnError) {
    if (r.spawnError.code !== 'ENOENT') return `cannot run: ${r.spawnError.message}`;
    return viaSudo ? 'sudo is not installed' : 'command not found';
  }
  if (r.code === 0) return undefined;
  const err = r.stderr.trim();
  if (viaSudo && /password is required|a terminal is required|askpass/i.test(err))
    return 'sudo -n needs a password (no passwordless sudo for this user)';
  if (viaSudo && /not in the sudoers|not allowed to execute/i.test(err))
    return 'sudo refused: not in sudoers';
  const last = err.split('\n').slice(-1)[0];
  return `${r.signal ? `killed by ${r.signal}` : `exit ${r.code}`}${last ? `: ${last}` : ''}`;
}

export async function setupRunner(
  log: (line: string) => void,
  deps: { run?: CommandRunner; check?: DeviceCheck; root?: boolean; devices?: readonly Device[] } = {},
): Promise<RunnerSetup> {
  const run = deps.run ?? ((argv, opts) => runCommand(argv, opts));
  const check = deps.check ?? openDevice;
  const root = deps.root ?? process.getuid?.() === 0;
  const devices = deps.devices ?? DEVICES;
  const checkAll = async () =>
    Object.fromEntries(await Promise.all(devices.map(async (d) => [d.path, await check(d.path)] as const)));

  const before = await checkAll();
  const failures: string[] = [];
  const failedFor = new Map<string, string[]>(devices.map((d) => [d.path, []]));
  const alreadyUsable = Object.values(before).every((v) => v === undefined);
  if (!alreadyUsable) {
    let refused: string | undefined;
    for (const step of runnerSetupSteps({ root, devices })) {
      if (step.ifExists && (await check(step.devices[0]!)) === 'does not exist') continue;
      const cmd = step.argv.join(' ');
      // Once sudo says no, every later step would say the same: record it without asking again.
      const why =
        refused ??
        stepFailure(
          await run(step.argv, { timeoutMs: 30_000, ...(step.input ? { input: step.input } : {}) }),
          !root,
        );
      if (!why) continue;
      if (/^sudo /.test(why)) refused = why;
      failures.push(`${cmd}: ${why}`);
      for (const d of step.devices) failedFor.get(d)?.push(`\`${cmd}\`: ${why}`);
    }
  }
  const after = alreadyUsable ? before : await checkAll();
  const state: Record<string, DeviceState> = {};
  for (const d of devices) {
    const err = after[d.path];
    if (err === undefined) {
      state[d.path] = { usable: true, detail: alreadyUsable ? 'usable (already)' : 'usable' };
      continue;
    }
    // The first failure of a step for this device is the cause; the rest follow from it.
    const cause =
      failedFor.get(d.path)?.[0] ??
      (err === 'does not exist' && !d.module
        ? 'no hardware virtualization on this runner (or kvm_intel/kvm_amd not loaded)'
        : undefined);
    state[d.path] = { usable: false, detail: cause ? `${err}; ${cause}` : err };
  }
  log(
    `runner setup: ${devices
      .map((d) => `${d.path} ${state[d.path]!.usable ? 'usable' : `NOT usable (${state[d.path]!.detail})`}`)
      .join(', ')}`,
  );
  if (failures.length > 0 && Object.values(state).some((s) => !s.usable))
    log(`runner setup: ${failures.length} step(s) failed:\n${failures.map((f) => `  ${f}`).join('\n')}`);
  return { devices: state, failures, alreadyUsable };
}

/**
 * Ubuntu 24.04 runners restrict unprivileged user namespaces through AppArmor, and mkosi (run as the
 * runner's user) builds and boots inside them; mkosi's own setup action lifts the restriction the same way.
 */
export const USERNS_SYSCTLS = [
  'kernel.apparmor_restrict_unprivileged_userns',
  'kernel.apparmor_restrict_unprivileged_unconfined',
] as const;

const sysctlPath = (name: string) => `/proc/sys/${name.replace(/\./g, '/')}`;

/** The steps that lift the restrictions currently set to 1 (read through `read`; none when absent). */
export async function userNamespaceSteps(p: {
  root: boolean;
  read: (path: string) => Promise<string | undefined>;
}): Promise<string[][]> {
  const steps: string[][] = [];
  for (const name of USERNS_SYSCTLS) {
    if ((await p.read(sysctlPath(name)))?.trim() !== '1') continue;
    const argv = ['sysctl', '--ignore', '--write', `${name}=0`];
    steps.push(p.root ? argv : ['sudo', '-n', ...argv]);
  }
  return steps;
}

export async function allowUserNamespaces(
  log: (line: string) => void,
  deps: { run?: CommandRunner; root?: boolean; read?: (path: string) => Promise<string | undefined> } = {},
): Promise<string[]> {
  const run = deps.run ?? ((argv, opts) => runCommand(argv, opts));
  const root = deps.root ?? process.getuid?.() === 0;
  const read = deps.read ?? ((path: string) => readFile(path, 'utf8').catch(() => undefined));
  const failures: string[] = [];
  for (const argv of await userNamespaceSteps({ root, read })) {
    const why = stepFailure(await run(argv, { timeoutMs: 30_000 }), !root);
    if (why) failures.push(`${argv.join(' ')}: ${why}`);
    else log(`runner setup: ${argv.slice(root ? 0 : 2).join(' ')} (unprivileged user namespaces for mkosi)`);
  }
  if (failures.length > 0)
    log(
      `runner setup: could not allow unprivileged user namespaces, mkosi may fail to build or boot:\n${failures.map((f) => `  ${f}`).join('\n')}`,
    );
  return failures;
}

/**
 * apt-get install of `packages` (Debian and Ubuntu names): the package lists first, since a runner image's
 * go stale, then the packages, waiting for a dpkg lock that unattended upgrades may hold at boot; through
 * `sudo -n` when not root. Pure: argument vectors, never shell strings.
 */
export function aptInstallSteps(p: { root: boolean; packages: readonly string[] }): string[][] {
  const priv = (argv: string[]) => (p.root ? argv : ['sudo', '-n', ...argv]);
  return [
    priv(['apt-get', 'update', '-q']),
    priv([
      'apt-get',
      'install',
      '-y',
      '-q',
      '--no-install-recommends',
      '-o',
      'DPkg::Lock::Timeout=120',
      ...p.packages,
    ]),
  ];
}

export interface AptInstall {
  /** The install step succeeded. */
  installed: boolean;
  /** The steps that failed, each as "<command>: <why>" (a failed update alone still lets the install run). */
  failures: string[];
  /** The install command, as run (or as it would have run). */
  command: string;
}

/** Runs aptInstallSteps with an injected command runner; a refused sudo is asked only once. */
export async function aptInstall(
  packages: readonly string[],
  deps: { run?: CommandRunner; root?: boolean } = {},
): Promise<AptInstall> {
  const run = deps.run ?? ((argv, opts) => runCommand(argv, opts));
  const root = deps.root ?? process.getuid?.() === 0;
  const [update, install] = aptInstallSteps({ root, packages }) as [string[], string[]];
  const failures: string[] = [];
  const command = install.join(' ');
  const updateFailed = stepFailure(await run(update, { timeoutMs: 300_000 }), !root);
  if (updateFailed) {
    failures.push(`${update.join(' ')}: ${updateFailed}`);
    // Once sudo says no, the install would say the same.
    if (/^sudo /.test(updateFailed)) return { installed: false, failures, command };
  }
  const installFailed = stepFailure(await run(install, { timeoutMs: 300_000 }), !root);
  if (installFailed) failures.push(`${command}: ${installFailed}`);
  return { installed: !installFailed, failures, command };
}
