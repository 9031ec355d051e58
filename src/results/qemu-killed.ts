/**
 * systemd's wrapper retries a VM test once when QEMU was killed (mkosi exit 247), and reports the second
 * such failure as a skip ("failed due to QEMU crash"), since on some hosts QEMU crashes at random. itest
 * retries infrastructure errors already (infra-retries); this turns the last one into that skip for the
 * tests that ask for it (imported from systemd's meson suite). Pure.
 */
import { MKOSI_QEMU_KILLED } from './classify.ts';
import type { Outcome } from './model.ts';

export function skipWhenQemuKilled(
  o: Outcome,
  mkosiExit: number | null,
  p: { skipWhenQemuKilled?: boolean; exitStatus: number },
  retriesLeft: boolean,
): Outcome {
  if (!p.skipWhenQemuKilled || retriesLeft || p.exitStatus === MKOSI_QEMU_KILLED) return o;
  if (o.status !== 'error' || !o.infra || mkosiExit !== MKOSI_QEMU_KILLED) return o;
  return {
    ...o,
    status: 'skip',
    infra: false,
    reason: `${o.reason} again after its retry: skipped, as systemd's wrapper does for a QEMU crash`,
  };
}
