/**
 * What a mode that runs mkosi needs from the runner first: the mkosi release it asked for, unprivileged
 * user namespaces (mkosi builds and boots in them), and the KVM and vhost devices when VMs boot.
 */
import type { ActionConfig } from '../inputs.ts';
import { installMkosiRelease } from './mkosi-release.ts';
import { allowUserNamespaces, setupRunner } from './setup.ts';

/** Readies the runner; returns the mkosi command to run (the installed release's, else the configured one). */
export async function readyRunner(
  cfg: ActionConfig,
  log: (line: string) => void,
  p: { vms: boolean },
): Promise<string[]> {
  const mkosi = cfg.mkosiRelease
    ? (await installMkosiRelease(cfg.mkosiRelease, { env: cfg.run.env, log })).command
    : cfg.run.mkosi;
  if (cfg.setupRunner) {
    await allowUserNamespaces(log);
    if (p.vms) await setupRunner(log);
  }
  return mkosi;
}
