/**
 * Confirms, once the image exists, that KVM really runs its kernel (kvm-boot-probe.ts), remembering the
 * verdict for this host boot (verdict-cache.ts). Says what it tried; a broken KVM comes back as an
 * AccelFallback for the run's Accelerator to act on.
 */
import type { AccelFallback } from './decide.ts';
import { findProbeKernel, kernelDigest, probeKvmBoot } from './kvm-boot-probe.ts';
import { VerdictCache } from './verdict-cache.ts';

export interface KvmConfirmation {
  /** Undefined when KVM works (or nothing could be tried); the fallback to take otherwise. */
  fallback?: AccelFallback;
  /** One line for the host report: what was tried and what came of it. */
  detail: string;
  /** Records a later verdict (a VM that showed KVM broken after all) for the next run. */
  remember(usable: boolean, detail: string, qemuLine?: string): Promise<void>;
}

/** The verdict cache key of the boot probe: it holds for this QEMU and this kernel on this host boot. */
export function bootVerdictKey(qemuVersion: string, kernelDigest: string): string {
  return `boot|qemu ${qemuVersion}|kernel ${kernelDigest}`;
}

export async function confirmKvm(o: {
  qemu: string;
  qemuVersion: string;
  imageDir: string;
  cacheDir: string;
}): Promise<KvmConfirmation> {
  const kernel = await findProbeKernel(o.imageDir);
  if (!kernel) {
    return {
      detail: `no kernel in ${o.imageDir} to try KVM with; each VM is watched for KVM errors instead`,
      remember: async () => {},
    };
  }
  const cache = await VerdictCache.open(o.cacheDir);
  const digest = await kernelDigest(kernel).catch((e: Error) => e);
  if (digest instanceof Error)
    return {
      detail: `cannot read ${kernel} to try KVM with (${digest.message}); each VM is watched for KVM errors instead`,
      remember: async () => {},
    };
  const key = bootVerdictKey(o.qemuVersion, digest);
  const remember = async (usable: boolean, detail: string, qemuLine?: string) =>
    cache.set(key, {
      usable,
      detail,
      seconds: 0,
      at: new Date().toISOString(),
      ...(qemuLine ? { qemuLine } : {}),
    });
  const cached = await cache.get(key);
  const how = cached ? ` (remembered for this host boot in ${cache.path}; delete it to try again)` : '';
  let verdict: { usable: boolean; detail: string; qemuLine?: string };
  if (cached) verdict = cached;
  else {
    const probed = await probeKvmBoot({ qemu: o.qemu, kernel });
    verdict = {
      usable: probed.usable,
      detail: probed.detail,
      ...(probed.failure ? { qemuLine: probed.failure.line } : {}),
    };
    // An inconclusive try is not remembered: the next run tries again.
    if (probed.conclusive)
      await cache.set(key, { ...verdict, seconds: probed.seconds, at: new Date().toISOString() });
  }
  if (verdict.usable) return { detail: `${verdict.detail}${how}`, remember };
  return {
    fallback: { detectedBy: 'probe', reason: `${verdict.detail}${how}`, qemuLine: verdict.qemuLine ?? '' },
    detail: `${verdict.detail}${how}`,
    remember,
  };
}
