/**
 * Host decisions from a probe: which mkosi dialect, accelerator, transport and pool size, and what is
 * missing (with how to install it). Pure.
 */
import type { HostInfo } from './probe.ts';
import type { Choice } from '../config/run-config.ts';
import { spell, type FrontDoor } from '../config/settings.ts';
import { mkosiRuntimeProblems } from './mkosi-needs.ts';
import { dialectFor, type Dialect } from '../mkosi/dialect.ts';
import type { Accel, Transport } from '../mkosi/vm-argv.ts';

export interface HostRequest {
  transport: 'auto' | Transport;
  kvm: Choice;
  /** The front door the request came through, for the words of the messages (default: the CLI's). */
  door?: FrontDoor;
  /** Multiplier for timeouts; undefined = 1 with KVM, TCG_TIMEOUT_SCALE without. */
  timeoutScale?: number;
}

export interface HostSetup {
  dialect: Dialect;
  accel: Accel;
  accelDetail: string;
  transport: Transport;
  transportDetail: string;
  timeoutScale: number;
  /** vCPUs per VM unless a test sets its own. */
  defaultCpus: number;
  warnings: string[];
}

/** Software emulation is 5-10x slower than KVM here (boot 35-60 s vs a few seconds): give tests 3x the time. */
export const TCG_TIMEOUT_SCALE = 3;

const INSTALL_HINT =
  'on Debian 12 add bookworm-backports and run `apt-get install -t bookworm-backports mkosi qemu-system-x86 systemd-journal-remote`; ' +
  'on Debian 13 or Ubuntu 24.10+ `apt-get install mkosi qemu-system-x86 systemd-journal-remote` (or run scripts/setup-host.sh)';

export class HostNotReady extends Error {
  constructor(readonly problems: string[]) {
    super(`the host is not ready to run VM tests:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

export function decideHost(info: HostInfo, req: HostRequest): HostSetup {
  const door = req.door ?? 'cli';
  const problems: string[] = [];
  const warnings: string[] = [];
  let dialect: Dialect | undefined;
  if (info.mkosi.error || !info.mkosi.version) {
    problems.push(
      `mkosi: ${info.mkosi.error ?? 'unknown version'}. Install mkosi >= 24: ${INSTALL_HINT}; or set ${spell(door, 'mkosi')}`,
    );
  } else {
    try {
      dialect = dialectFor(info.mkosi.version);
    } catch (e) {
      problems.push(`${(e as Error).message}. Upgrade: ${INSTALL_HINT}`);
    }
    // mkosi's own modules import (it printed a version), but not necessarily what its verbs need.
    if (dialect && info.mkosiReady) {
      const verdict = mkosiRuntimeProblems(info.mkosi.version, info.mkosiReady);
      problems.push(...verdict.problems);
      warnings.push(...verdict.warnings);
    }
  }
  if (info.qemu.error)
    problems.push(
      `QEMU: ${info.qemu.error}. Install it: apt-get install ${info.arch === 'x86_64' ? 'qemu-system-x86' : info.arch === 'aarch64' ? 'qemu-system-arm' : 'qemu-system-misc'}`,
    );
  if (!info.journalRemote)
    problems.push(
      `systemd-journal-remote not found (receives each VM's journal). Install it: apt-get install systemd-journal-remote`,
    );
  if (!info.journalctl) problems.push('journalctl not found (reads the journals). Install systemd.');

  let accel: Accel;
  let accelDetail: string;
  if (req.kvm === 'no') {
    accel = 'tcg';
    accelDetail = 'KVM disabled by request; software emulation (TCG)';
  } else if (info.kvm.usable) {
    accel = 'kvm';
    accelDetail = info.kvm.detail;
  } else if (req.kvm === 'yes') {
    accel = 'tcg';
    accelDetail = info.kvm.detail;
    problems.push(
      `KVM was required (${spell(door, 'kvm', 'yes')}) but is not usable: ${info.kvm.detail}. Fix: load kvm and give this user access to /dev/kvm, or use ${spell(door, 'kvm', 'auto')}`,
    );
  } else {
    accel = 'tcg';
    accelDetail = `KVM not usable (${info.kvm.detail}); falling back to software emulation (TCG)`;
    warnings.push(
      `${accelDetail}: VMs boot 5-10x slower and timeouts are scaled by ${req.timeoutScale ?? TCG_TIMEOUT_SCALE}`,
    );
  }

  const userVsock = info.vhostDeviceVsock
    ? `vhost-device-vsock ${info.vhostDeviceVsock.version ?? '(version unknown)'} at ${info.vhostDeviceVsock.path}`
    : undefined;
  let transport: Transport;
  let transportDetail: string;
  if (req.transport === 'vsock') {
    transport = 'vsock';
    transportDetail = 'vsock by request';
    if (!info.vhostVsock.usable) {
      problems.push(
        `${spell(door, 'transport', 'vsock')} needs /dev/vhost-vsock: ${info.vhostVsock.detail}. Fix: \`modprobe vhost_vsock\` and open the device to this user, or use ${userVsock ? `${spell(door, 'transport', 'vsock-user')} (${userVsock}) or ` : ''}${spell(door, 'transport', 'auto')}`,
      );
    }
  } else if (req.transport === 'vsock-user') {
    transport = 'vsock-user';
    transportDetail = `user-space vsock by request (${userVsock ?? 'vhost-device-vsock missing'})`;
    if (!userVsock)
      problems.push(
        `${spell(door, 'transport', 'vsock-user')} needs vhost-device-vsock on PATH. Fix: run scripts/setup-host.sh (it installs it, from Debian sid where the distribution has no package), or use ${spell(door, 'transport', 'auto')}`,
      );
  } else if (req.transport === 'serial') {
    transport = 'serial';
    transportDetail = 'virtio-serial by request';
  } else if (info.vhostVsock.usable) {
    transport = 'vsock';
    transportDetail = 'vsock (/dev/vhost-vsock usable)';
  } else if (userVsock) {
    transport = 'vsock-user';
    transportDetail = `user-space vsock: ${userVsock} (${info.vhostVsock.detail})`;
  } else {
    transport = 'serial';
    transportDetail = `virtio-serial (${info.vhostVsock.detail}; no vhost-device-vsock on PATH)`;
  }
  if (problems.length > 0 || !dialect) throw new HostNotReady(problems);
  return {
    dialect,
    accel,
    accelDetail,
    transport,
    transportDetail,
    timeoutScale: req.timeoutScale ?? (accel === 'tcg' ? TCG_TIMEOUT_SCALE : 1),
    defaultCpus: accel === 'kvm' ? 2 : 1,
    warnings,
  };
}

/** How the run learned that KVM lies, for the reports. */
export interface AccelFallback {
  /** The boot probe (before any test) or a test's VM (the first to see it). */
  detectedBy: 'probe' | 'vm';
  /** What happened, in words (accel-failure.ts describeAccelFailure). */
  reason: string;
  /** QEMU's own first line. */
  qemuLine: string;
  /** The test whose VM showed it. */
  test?: string;
}

/**
 * The plan once KVM turned out broken: TCG with TCG's timeout scale (unless one was given) and vCPU
 * count, so that a test's timeout keeps meaning guest time. With kvm `yes` there is no fallback: the
 * host is not ready (exit 3).
 */
export function fallBackToTcg(plan: HostSetup, req: HostRequest, fb: AccelFallback): HostSetup {
  if (req.kvm === 'yes')
    throw new HostNotReady([
      `KVM was required (${spell(req.door ?? 'cli', 'kvm', 'yes')}) but is broken on this host: ${fb.reason}. ` +
        `Fix: run on a host whose KVM runs Linux guests (nested virtualization is a common cause), or use ${spell(req.door ?? 'cli', 'kvm', 'auto')} to fall back to TCG`,
    ]);
  const timeoutScale = req.timeoutScale ?? TCG_TIMEOUT_SCALE;
  const accelDetail = `KVM is broken on this host (${fb.reason}); fell back to software emulation (TCG)`;
  return {
    ...plan,
    accel: 'tcg',
    accelDetail,
    timeoutScale,
    defaultCpus: 1,
    warnings: [
      ...plan.warnings,
      `${accelDetail}: VMs boot 5-10x slower and timeouts are scaled by ${timeoutScale}`,
    ],
  };
}

const MiB = 1024 ** 2;
/** Host memory kept free for mkosi, journal-remote and the page cache. */
const HOST_RESERVE = 1024 * MiB;
/** QEMU's own overhead per VM on top of guest RAM. */
const VM_OVERHEAD = 256 * MiB;

/**
 * How many VMs run at once. TCG burns a host core per vCPU, so CPUs bound it; KVM guests mostly wait, so
 * memory bounds it. An explicit --jobs wins but is reported when it exceeds what memory allows.
 */
export function computeSlots(p: {
  cpus: number;
  memAvailable: number;
  vmRam: number;
  vmCpus: number;
  accel: Accel;
  jobs?: number;
}): {
  slots: number;
  byCpu: number;
  byMemory: number;
} {
  const byCpu = Math.max(1, p.accel === 'tcg' ? Math.floor(p.cpus / p.vmCpus) : p.cpus);
  const byMemory = Math.max(1, Math.floor((p.memAvailable - HOST_RESERVE) / (p.vmRam + VM_OVERHEAD)));
  const slots = p.jobs !== undefined ? Math.max(1, p.jobs) : Math.min(byCpu, byMemory);
  return { slots, byCpu, byMemory };
}
