/**
 * The second KVM probe: boot the image's own kernel under KVM for a moment, with no root file system, so
 * that it panics as soon as it has initialised (seconds with a working KVM; QEMU exits by itself thanks
 * to panic=-1 and -no-reboot). An empty machine (the first probe, in probe.ts) runs its firmware happily
 * on hosts whose KVM cannot run a Linux guest: on those the kernel's first instructions stop the vCPU
 * with a KVM internal error and QEMU pauses (background.md). Runs once the image exists.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { access, readdir, rm, stat } from 'node:fs/promises';
import { release, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describeAccelFailure, findAccelFailure, type AccelFailure } from '../qemu/accel-failure.ts';
import { watchAccel } from '../qemu/accel-watch.ts';
import { qmpArgs } from '../qemu/qmp.ts';

export interface KvmBootVerdict {
  usable: boolean;
  /** A verdict worth remembering: the kernel ran, or QEMU said KVM failed. Else usable, and VMs are watched. */
  conclusive: boolean;
  /** What was tried and what happened, in words. */
  detail: string;
  seconds: number;
  failure?: AccelFailure;
}

/** Long enough for a kernel to reach its root mount under a slow KVM; a broken one shows within ~7 s here. */
export const KVM_BOOT_PROBE_TIMEOUT_MS = 20_000;

/**
 * The kernel to boot: the image's split kernel (`<output>.vmlinuz`, written by mkosi for bootable
 * images), else a directory image's own kernel, else the host's. Undefined when there is none.
 */
export async function findProbeKernel(imageDir: string): Promise<string | undefined> {
  const names = (await readdir(imageDir).catch(() => [] as string[])).sort();
  const split = names.find((n) => n.endsWith('.vmlinuz'));
  if (split) return join(imageDir, split);
  for (const n of names) {
    const modules = join(imageDir, n, 'usr/lib/modules');
    const kvers = (await readdir(modules).catch(() => [] as string[])).sort().reverse();
    for (const k of kvers) {
      const f = join(modules, k, 'vmlinuz');
      if (await isFile(f)) return f;
    }
  }
  const host = `/boot/vmlinuz-${release()}`;
  return (await isFile(host)) ? host : undefined;
}

/** A file we can read (the host's /boot/vmlinuz-* is root-only on Ubuntu). */
async function isFile(p: string): Promise<boolean> {
  try {
    await access(p, constants.R_OK);
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** sha256 of the kernel: a verdict holds for that kernel on this host boot. */
export function kernelDigest(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (d) => h.update(d))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex').slice(0, 16)));
  });
}

export function kvmBootArgv(qemu: string, kernel: string, qmpSocket: string, accel = 'kvm'): string[] {
  return [
    qemu,
    '-accel',
    accel,
    '-machine',
    'q35',
    // The CPU model mkosi gives its VMs under KVM.
    '-cpu',
    'max',
    '-smp',
    '1',
    '-m',
    '256',
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot',
    '-serial',
    'stdio',
    '-kernel',
    kernel,
    // No initrd and no root=: the kernel panics once it is up, and panic=-1 + -no-reboot end QEMU.
    '-append',
    'console=ttyS0 earlyprintk=serial,ttyS0 panic=-1 loglevel=4',
    ...qmpArgs(qmpSocket),
  ];
}

export async function probeKvmBoot(o: {
  qemu: string;
  kernel: string;
  timeoutMs?: number;
  /** Tests only: `tcg` exercises the verdict on a host without a working KVM. */
  accel?: 'kvm' | 'tcg';
}): Promise<KvmBootVerdict> {
  const timeoutMs = o.timeoutMs ?? KVM_BOOT_PROBE_TIMEOUT_MS;
  const socket = join(tmpdir(), `itest-kvm-probe-${randomBytes(4).toString('hex')}.qmp`);
  const argv = kvmBootArgv(o.qemu, o.kernel, socket, o.accel);
  const t0 = performance.now();
  const secs = () => Math.round((performance.now() - t0) / 100) / 10;
  const tried = `booted the image's kernel (${basename(o.kernel)}) under ${o.accel === 'tcg' ? 'TCG' : 'KVM'} with no root file system`;
  return new Promise<KvmBootVerdict>((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let serial = '';
    let stderr = '';
    let settled = false;
    const finish = (v: Omit<KvmBootVerdict, 'seconds'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      watch.stop();
      child.kill('SIGKILL');
      void rm(socket, { force: true });
      resolve({ ...v, seconds: secs() });
    };
    const watch = watchAccel({
      streams: [child.stderr],
      qmpSocket: socket,
      qmpIntervalMs: 500,
      onBroken: (failure) =>
        finish({
          usable: false,
          conclusive: true,
          failure,
          detail: `${tried}: ${describeAccelFailure(failure, secs())}`,
        }),
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      serial += d;
      if (/Kernel panic - not syncing/.test(serial))
        finish({
          usable: true,
          conclusive: true,
          detail: `${tried}: it ran to its expected panic in ${secs()} s`,
        });
    });
    const timer = setTimeout(() => {
      const printed = serial.trim().length > 0;
      finish({
        usable: true,
        conclusive: printed,
        detail: printed
          ? `${tried}: still running after ${timeoutMs / 1000} s (it printed, so KVM runs it; slow)`
          : `${tried}: inconclusive (no output and no error in ${timeoutMs / 1000} s); each VM is watched instead`,
      });
    }, timeoutMs);
    child.on('error', (err) =>
      finish({
        usable: true,
        conclusive: false,
        detail: `inconclusive: cannot run ${o.qemu} to test KVM: ${err.message}`,
      }),
    );
    child.on('exit', (code, signal) => {
      if (settled) return;
      if (code === 0) {
        finish({
          usable: true,
          conclusive: true,
          detail: `${tried}: QEMU ended it after its panic in ${secs()} s`,
        });
        return;
      }
      // Only QEMU's own KVM words make it KVM's fault: a kernel it cannot load or a lack of memory is not.
      const failure = findAccelFailure(stderr.split('\n'));
      const firstErr = stderr.trim().split('\n')[0]?.trim() || `exit ${code ?? signal}`;
      finish(
        failure
          ? {
              usable: false,
              conclusive: true,
              failure,
              detail: `${tried}: ${describeAccelFailure(failure, secs())}`,
            }
          : {
              usable: true,
              conclusive: false,
              detail: `${tried}: inconclusive, QEMU exited (${firstErr}) without a KVM error; each VM is watched instead`,
            },
      );
    });
  });
}
