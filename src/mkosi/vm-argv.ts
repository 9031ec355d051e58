/**
 * The argument vector that boots one test in one VM through mkosi. Pure: every input is explicit, so the
 * exact command is testable for each dialect and transport, and printable for the user to rerun.
 */
import type { Dialect } from './dialect.ts';
import type { TestSpec } from '../config/test-spec.ts';
import {
  EMERGENCY_UNIT,
  JOURNAL_PORT,
  MANAGER_UNIT,
  SHUTDOWN_HOOK_CREDENTIAL,
  JOURNAL_UNIT,
  STATUS_PORT,
  emergencyDropin,
  emergencyExitUnit,
  journalExportUnit,
  managerReportUnit,
  shutdownHook,
  testUnitDropin,
} from '../guest/units.ts';
import { formatMiB } from '../util/size.ts';
import { qmpArgs } from '../qemu/qmp.ts';
import { userVsockCredentials, userVsockQemuArgs, type UserVsockPaths } from '../qemu/user-vsock.ts';

/**
 * How the status and the journal leave the VM: the kernel's vhost-vsock (mkosi's own vsock path), a
 * user-space vsock device (vhost-device-vsock, src/qemu/user-vsock.ts), or virtio-serial ports.
 */
export type Transport = 'vsock' | 'vsock-user' | 'serial';
export type Accel = 'kvm' | 'tcg';

export interface VmConfig {
  mkosi: string[];
  dialect: Dialect;
  configDir: string;
  imageDir: string;
  machine: string;
  transport: Transport;
  accel: Accel;
  cpus: number;
  /** mkosi firmware choice (auto, linux, uefi, ...); undefined leaves it to the image's config. */
  firmware?: string;
  /** Host file the status port writes to. */
  statusFile: string;
  /** --shell: boot the normal default target with the test pulled in, and keep the VM up afterwards. */
  shell?: boolean;
  /** QMP socket for the hang report (sysrq task dump before a timeout kill). */
  qmpSocket?: string;
  /** Serial: host file receiving the journal export stream. Vsock: the .journal mkosi's journal-remote writes. */
  journalTarget: string;
  /** vsock-user: the sockets of the VM's vhost-device-vsock. */
  userVsock?: UserVsockPaths;
  /** The run's throw-away ssh key (public half): root may log in with it over vsock (`itest ssh`). */
  sshPublicKey?: string;
  /** The guest's architecture (the host's: uname -m spelling); picks the pvpanic device. x86_64 if unset. */
  arch?: string;
}

/** One `-smbios type=11` credential, base64 so that newlines and spaces survive (mkosi 24 splits --credential). */
export function smbiosCredential(name: string, value: string): string[] {
  return [
    '-smbios',
    `type=11,value=io.systemd.credential.binary:${name}=${Buffer.from(value).toString('base64')}`,
  ];
}

/** Credentials the engine injects, then the test's own (which may override nothing of ours: names differ). */
export function guestCredentials(
  spec: TestSpec,
  transport: Transport,
  shell = false,
  sshPublicKey?: string,
): [string, string][] {
  const creds: [string, string][] = [
    [
      `systemd.unit-dropin.${spec.unit}`,
      testUnitDropin(spec.unit, shell, spec.unitEnvironment, transport === 'serial' ? [JOURNAL_UNIT] : []),
    ],
    [`systemd.extra-unit.${MANAGER_UNIT}`, managerReportUnit()],
    [SHUTDOWN_HOOK_CREDENTIAL, shutdownHook()],
    [`systemd.extra-unit.${EMERGENCY_UNIT}`, emergencyExitUnit()],
    ['systemd.unit-dropin.emergency.target', emergencyDropin()],
  ];
  if (transport === 'serial') creds.push([`systemd.extra-unit.${JOURNAL_UNIT}`, journalExportUnit()]);
  if (transport === 'vsock-user') creds.push(...userVsockCredentials());
  if (sshPublicKey) creds.push(['ssh.authorized_keys.root', sshPublicKey]);
  for (const [k, v] of Object.entries(spec.credentials)) creds.push([k, v]);
  return creds;
}

export function kernelCmdline(spec: TestSpec, transport: Transport, shell = false): string[] {
  return [
    // A shell needs the default target (gettys, logins); the test is pulled in next to it.
    shell ? `systemd.wants=${spec.unit}` : `systemd.unit=${spec.unit}`,
    ...(transport === 'serial' ? [`systemd.wants=${JOURNAL_UNIT}`] : []),
    // A kernel panic reports itself to QEMU's pvpanic device (which ends QEMU) and reboots at once; a kernel
    // without the pvpanic driver is ended by the console watch (src/qemu/panic-watch.ts).
    'panic=-1',
    'systemd.crash_action=poweroff',
    // Lets the host ask for a task dump (SysRq-T) when the test hangs; distributions default to a subset.
    'sysrq_always_enabled=1',
    ...spec.kernelCmdline,
  ];
}

/** QEMU's file chardev options are comma-separated: a comma in a path must be doubled. */
const qemuPath = (p: string) => p.replace(/,/g, ',,');

/**
 * A kernel panic ends QEMU at once (with a failure) through the pvpanic device, while the guest may still
 * reboot as often as it likes: `-no-reboot` would end the VM at a test's first reboot.
 */
export function panicArgs(arch: string): string[] {
  return ['-device', arch === 'x86_64' ? 'pvpanic' : 'pvpanic-pci', '-action', 'panic=exit-failure'];
}

export function qemuArgs(spec: TestSpec, vm: VmConfig): string[] {
  const args = [
    ...panicArgs(vm.arch ?? 'x86_64'),
    '-device',
    'virtio-serial-pci,id=itest-serial',
    '-chardev',
    `file,id=itest-status,path=${qemuPath(vm.statusFile)}`,
    '-device',
    `virtserialport,bus=itest-serial.0,chardev=itest-status,name=${STATUS_PORT}`,
  ];
  if (vm.transport === 'serial') {
    args.push(
      '-chardev',
      `file,id=itest-journal,path=${qemuPath(vm.journalTarget)}`,
      '-device',
      `virtserialport,bus=itest-serial.0,chardev=itest-journal,name=${JOURNAL_PORT}`,
    );
  }
  if (vm.transport === 'vsock-user') {
    if (!vm.userVsock) throw new Error('qemuArgs: the vsock-user transport needs the sockets of its device');
    args.push(...userVsockQemuArgs(vm.userVsock, formatMiB(spec.ram)));
  }
  if (vm.qmpSocket) args.push(...qmpArgs(vm.qmpSocket));
  for (const [k, v] of guestCredentials(spec, vm.transport, vm.shell, vm.sshPublicKey))
    args.push(...smbiosCredential(k, v));
  args.push(...spec.qemuArgs);
  return args;
}

export function vmArgv(spec: TestSpec, vm: VmConfig): string[] {
  const { flags } = vm.dialect;
  const argv = [
    ...vm.mkosi,
    '--directory',
    vm.configDir,
    '--output-dir',
    vm.imageDir,
    `${flags.kvm}=${vm.accel === 'kvm' ? 'yes' : 'no'}`,
    `${flags.vsock}=${vm.transport === 'vsock' ? 'yes' : 'no'}`,
    `${flags.ram}=${formatMiB(spec.ram)}`,
    `${flags.cpus}=${vm.cpus}`,
    ...(vm.firmware ? [`${flags.firmware}=${vm.firmware}`] : []),
    ...(vm.dialect.console ? [`--console=${vm.dialect.console}`] : []),
    `--machine=${vm.machine}`,
    '--ephemeral=yes',
    `--kernel-command-line-extra=${kernelCmdline(spec, vm.transport, vm.shell).join(' ')}`,
    ...(vm.transport === 'vsock' ? [`--forward-journal=${vm.journalTarget}`] : []),
    ...spec.mkosiArgs,
    vm.dialect.verb,
    ...(vm.dialect.qemuArgsSeparator ? ['--'] : []),
    ...qemuArgs(spec, vm),
  ];
  return argv;
}
