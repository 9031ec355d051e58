/**
 * The host's VM budget shared by separate itest processes (`meson test -j N` starts one per test): a
 * directory of numbered slot files, `<dir>/<i>` for i below the budget, each a token lock
 * (image/token-lock.ts) held by the process whose VM runs in it. A process takes a free slot before it
 * boots and frees it when the VM has ended; a slot whose holder died (SIGKILL) is free again. The budget is
 * what the pool allows on this host (host/decide.ts computeSlots, --jobs when given), so that N processes
 * never run more VMs at once than one `itest run` would.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { breakIfDead, pause, releaseLock, takeLock } from '../image/token-lock.ts';

/** Waits for a free slot; resolves with its release. */
export type VmGate = (budget: number, signal: AbortSignal) => Promise<() => Promise<void>>;

export function hostSlots(
  dir: string,
  o: { pollMs?: number; onWait?: (budget: number) => void } = {},
): VmGate {
  return async (budget, signal) => {
    await mkdir(dir, { recursive: true });
    let told = false;
    for (;;) {
      for (let i = 0; i < Math.max(1, budget); i++) {
        const slot = join(dir, String(i));
        if ((await takeLock(slot)) || ((await breakFree(slot)) && (await takeLock(slot))))
          return () => releaseLock(slot);
      }
      if (!told) {
        told = true;
        o.onWait?.(budget);
      }
      await pause(o.pollMs ?? 250, signal);
    }
  };
}

/**
 * A dead holder's slot freed, when this process may: in a directory several users share (sticky, as
 * /tmp), another user's dead slot cannot be renamed away, and it stays taken until a process of that user (or root) frees it.
 */
async function breakFree(slot: string): Promise<boolean> {
  return breakIfDead(slot).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'EPERM' || e.code === 'EACCES') return false;
    throw e;
  });
}
