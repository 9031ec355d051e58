/** Looks at the host: tools, their versions, accelerators, CPUs and memory. Side effects only; no decisions. */
import { constants } from 'node:fs';
import { access, open, readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { spawn } from 'node:child_process';
import { runCommand } from '../util/process.ts';
import { VerdictCache } from './verdict-cache.ts';
import { findAccelFailure } from '../qemu/accel-failure.ts';
import { probeMkosiRuntime } from './mkosi-runtime-probe.ts';
import type { MkosiRuntime } from './mkosi-needs.ts';

export interface DeviceState {
  usable: boolean;
  detail: string;
}

export interface HostInfo {
  arch: string;
  mkosi: { command: string[]; version?: string; error?: string };
  qemu: { binary: string; version?: string; error?: string };
  kvm: DeviceState;
  vhostVsock: DeviceState;
  /** vhost-device-vsock (the vsock-user transport's backend), when on PATH. */
  vhostDeviceVsock?: { path: string; version?: string };
  journalRemote?: string;
  journalctl?: string;
  /** systemd version of the host's journalctl (journals from a newer guest may be unreadable by it). */
  journalctlVersion?: string;
  coredumpctl?: string;
  /** What mkosi's interpreters import and which tools its verbs find (mkosi-runtime-probe.ts). */
  mkosiReady?: MkosiRuntime;
  cpus: number;
  memTotal: number;
  memAvailable: number;
}

const QEMU_ARCH: Record<string, string> = {
  x64: 'x86_64',
  arm64: 'aarch64',
  ppc64: 'ppc64',
  s390x: 's390x',
  riscv64: 'riscv64',
};

export function hostArch(): string {
  return QEMU_ARCH[process.arch] ?? process.arch;
}

async function openRw(path: string): Promise<DeviceState> {
  try {
    const fh = await open(path, constants.O_RDWR);
    await fh.close();
    return { usable: true, detail: `${path} opens read-write` };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return {
      usable: false,
      detail: e.code === 'ENOENT' ? `${path} does not exist` : `${path}: ${e.code ?? e.message}`,
    };
  }
}

/**
 * /dev/kvm opening is not enough: nested or emulated KVM can accept the open and then abort QEMU at the
 * first vCPU run (seen on this project's CI machines). Boot an empty q35 machine for a moment: KVM works
 * if QEMU is still running after settleMs. (A KVM that pauses a Linux guest passes this: the boot probe,
 * kvm-boot-probe.ts, catches that once the image's kernel exists.)
 */
async function kvmWorks(qemu: string, settleMs = 1500): Promise<DeviceState & { conclusive?: boolean }> {
  const dev = await openRw('/dev/kvm');
  return dev.usable ? emptyMachineRuns(qemu, settleMs) : dev;
}

/** QEMU under KVM with an empty q35 machine: still running after settleMs, or why not. */
export function emptyMachineRuns(
  qemu: string,
  settleMs = 1500,
): Promise<DeviceState & { conclusive: boolean }> {
  return new Promise((resolve) => {
    let stderr = '';
    const child = spawn(
      qemu,
      [
        '-accel',
        'kvm',
        '-machine',
        'q35',
        '-cpu',
        'max',
        '-m',
        '64',
        '-nodefaults',
        '-no-user-config',
        '-display',
        'none',
        '-serial',
        'none',
        '-monitor',
        'none',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve({
        usable: true,
        conclusive: true,
        detail: "/dev/kvm opens and an empty machine runs (the image's kernel is tried once it exists)",
      });
    }, settleMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ usable: false, conclusive: false, detail: `cannot run ${qemu} to test KVM: ${err.message}` });
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const why =
        stderr.trim().split('\n').filter(Boolean).slice(0, 2).join('; ') || `exit ${code ?? signal}`;
      resolve({
        usable: false,
        // Worth remembering only when QEMU named KVM as the reason (not, say, a lack of memory).
        conclusive: findAccelFailure(stderr.split('\n')) !== undefined,
        detail: `/dev/kvm opens but QEMU cannot run a vCPU with it (${why})`,
      });
    });
  });
}

/**
 * kvmWorks once per host boot and QEMU version: later runs pay nothing for it. Only a verdict worth
 * keeping is kept: KVM ran, or QEMU named KVM as why it could not (an out-of-memory QEMU is tried again).
 */
async function rememberedKvmWorks(
  qemu: string,
  version: string | undefined,
  cacheDir: string | undefined,
): Promise<DeviceState> {
  const dev = await openRw('/dev/kvm');
  if (!dev.usable || !cacheDir) return dev.usable ? kvmWorks(qemu) : dev;
  const cache = await VerdictCache.open(cacheDir);
  const key = `empty-machine|qemu ${version ?? qemu}`;
  const seen = await cache.get(key);
  if (seen)
    return { usable: seen.usable, detail: `${seen.detail} (remembered for this host boot in ${cache.path})` };
  const t0 = performance.now();
  const v = await kvmWorks(qemu);
  const seconds = Math.round((performance.now() - t0) / 100) / 10;
  if (v.conclusive)
    await cache.set(key, { usable: v.usable, detail: v.detail, seconds, at: new Date().toISOString() });
  return v;
}

async function which(names: string[]): Promise<string | undefined> {
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
  for (const name of names) {
    const candidates = name.startsWith('/') ? [name] : dirs.map((d) => `${d}/${name}`);
    for (const c of candidates) {
      try {
        await access(c, constants.X_OK);
        return c;
      } catch {
        // next
      }
    }
  }
  return undefined;
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0] ?? '';
}

async function memInfo(): Promise<{ total: number; available: number }> {
  const text = await readFile('/proc/meminfo', 'utf8').catch(() => '');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { total: kb('MemTotal'), available: kb('MemAvailable') };
}

/** vhost-device-vsock on PATH and its version (beside the other probes, not after them). */
async function vhostDeviceVsock(): Promise<HostInfo['vhostDeviceVsock']> {
  const path = await which(['vhost-device-vsock']);
  if (!path) return undefined;
  const v = /vhost-device-vsock\s+(\S+)/.exec(
    (await runCommand([path, '--version'], { timeoutMs: 10_000 })).stdout,
  )?.[1];
  return { path, ...(v ? { version: v } : {}) };
}

export async function probeHost(opts: {
  mkosi: string[];
  env?: NodeJS.ProcessEnv;
  checkKvm?: boolean;
  /** Where the accelerator verdicts of this host boot are remembered (verdict-cache.ts). */
  cacheDir?: string;
  /** The mkosi config (a ToolsTree= there supplies mkosi's helpers instead of the host). */
  configDir?: string;
}): Promise<HostInfo> {
  const arch = hostArch();
  const qemuBinary = `qemu-system-${arch}`;
  // Whether mkosi can run its verbs, in parallel with the rest (it never rejects).
  const mkosiReady = probeMkosiRuntime(opts.mkosi, { env: opts.env, configDir: opts.configDir });
  const [mkosiRes, qemuPath, vsock, vhostDevice, journalRemote, journalctl, coredumpctl, mem] =
    await Promise.all([
      runCommand([...opts.mkosi, '--version'], { env: opts.env, timeoutMs: 30_000 }),
      which([qemuBinary]),
      openRw('/dev/vhost-vsock'),
      vhostDeviceVsock(),
      which([
        'systemd-journal-remote',
        '/usr/lib/systemd/systemd-journal-remote',
        '/lib/systemd/systemd-journal-remote',
      ]),
      which(['journalctl']),
      which(['coredumpctl']),
      memInfo(),
    ]);
  const mkosi: HostInfo['mkosi'] = { command: opts.mkosi };
  const v = /mkosi\s+(\d+(?:\.\d+)*)/.exec(mkosiRes.stdout);
  if (mkosiRes.spawnError)
    mkosi.error = `${opts.mkosi[0]}: ${mkosiRes.spawnError.code === 'ENOENT' ? 'not found' : mkosiRes.spawnError.message}`;
  else if (v?.[1]) mkosi.version = v[1];
  else
    mkosi.error = `\`${opts.mkosi.join(' ')} --version\` printed no version (exit ${mkosiRes.code}): ${firstLine(mkosiRes.stderr || mkosiRes.stdout)}`;

  const qemu: HostInfo['qemu'] = { binary: qemuPath ?? qemuBinary };
  if (!qemuPath) qemu.error = `${qemuBinary} not found on PATH`;
  else {
    const q = await runCommand([qemuPath, '--version'], { timeoutMs: 10_000 });
    const qv = /version\s+(\S+)/.exec(q.stdout);
    if (qv?.[1]) qemu.version = qv[1];
    else qemu.error = `${qemuPath} --version failed: ${firstLine(q.stderr)}`;
  }
  const kvm =
    qemuPath && opts.checkKvm !== false
      ? await rememberedKvmWorks(qemuPath, qemu.version, opts.cacheDir)
      : await openRw('/dev/kvm');
  const jv = journalctl
    ? /systemd\s+(\d+)/.exec((await runCommand([journalctl, '--version'])).stdout)?.[1]
    : undefined;

  const info: HostInfo = {
    arch,
    mkosi,
    qemu,
    kvm,
    vhostVsock: vsock,
    cpus: availableParallelism(),
    memTotal: mem.total,
    memAvailable: mem.available,
    mkosiReady: await mkosiReady,
  };
  if (vhostDevice) info.vhostDeviceVsock = vhostDevice;
  if (journalRemote) info.journalRemote = journalRemote;
  if (journalctl) info.journalctl = journalctl;
  if (jv) info.journalctlVersion = jv;
  if (coredumpctl) info.coredumpctl = coredumpctl;
  return info;
}
