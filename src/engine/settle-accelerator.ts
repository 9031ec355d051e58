import type { RunConfig } from '../config/run-config.ts';
import { confirmKvm } from '../host/confirm-kvm.ts';
import type { HostSetup } from '../host/decide.ts';
import type { HostInfo } from '../host/probe.ts';
import { Accelerator } from '../run/accelerator.ts';
import type { Ui } from './ui.ts';
import { hostRequest } from './prepare-image.ts';

/**
 * The run's Accelerator, after confirming that KVM runs the image's kernel (the empty-machine probe
 * cannot tell). A broken KVM switches the run to TCG here, before the first test, loudly; with kvm `yes`
 * it ends the run (exit 3). A VM that shows KVM broken later switches it the same way.
 */
export async function settleAccelerator(
  cfg: RunConfig,
  ui: Pick<Ui, 'info' | 'warn'>,
  host: HostInfo,
  hostSetup: HostSetup,
  imageDir: string,
): Promise<Accelerator> {
  const req = hostRequest(cfg);
  const confirmation =
    hostSetup.accel === 'kvm'
      ? await confirmKvm({
          qemu: host.qemu.binary,
          qemuVersion: host.qemu.version ?? 'unknown',
          imageDir,
          cacheDir: cfg.cacheDir,
        })
      : undefined;
  const accelerator = new Accelerator(hostSetup, req, (fb, plan) => {
    ui.warn(
      `KVM IS BROKEN ON THIS HOST: ${fb.test ? `the VM of ${fb.test}: ` : ''}${fb.reason}. ` +
        `Switching the whole run to software emulation (TCG): every VM from now on boots under TCG, timeouts x${plan.timeoutScale}` +
        (fb.detectedBy === 'vm' ? '; VMs that were running under KVM are stopped and rerun' : ''),
    );
    if (fb.detectedBy === 'vm') void confirmation?.remember(false, fb.reason, fb.qemuLine);
  });
  if (!confirmation) return accelerator;
  if (!confirmation.fallback) {
    ui.info(`  accel kvm confirmed: ${confirmation.detail}`);
    return accelerator;
  }
  if (accelerator.broken(confirmation.fallback) === 'stop') throw accelerator.fatal!;
  return accelerator;
}
