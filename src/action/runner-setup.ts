/**
 * Opens KVM, vhost-vsock and vhost-net to the job's user on a runner (udev rule, modprobe, chmod; through
 * `sudo -n` when not root), then checks by opening them. Every step is an argument vector; failures are
 * reported, never fatal: the engine falls back to TCG and the serial transport.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { runCommand } from '../run/process.ts';

const KVM_RULE = 'KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"\n';
const DEVICES = ['/dev/kvm', '/dev/vhost-vsock', '/dev/vhost-net'];

async function usable(path: string): Promise<boolean> {
  try {
    await (await open(path, constants.O_RDWR)).close();
    return true;
  } catch {
    return false;
  }
}

export async function setupRunner(log: (line: string) => void): Promise<Record<string, boolean>> {
  const root = process.getuid?.() === 0;
  const priv = (argv: string[], input?: string) =>
    runCommand(root ? argv : ['sudo', '-n', ...argv], { timeoutMs: 30_000, ...(input ? { input } : {}) });
  await priv(['mkdir', '-p', '/etc/udev/rules.d']);
  await priv(['tee', '/etc/udev/rules.d/99-itest-kvm.rules'], KVM_RULE);
  await priv(['udevadm', 'control', '--reload-rules']);
  await priv(['udevadm', 'trigger', '--name-match=kvm']);
  for (const mod of ['vhost_vsock', 'vhost_net']) await priv(['modprobe', mod]);
  const state: Record<string, boolean> = {};
  for (const dev of DEVICES) {
    if (!(await usable(dev))) await priv(['chmod', '0666', dev]);
    state[dev] = await usable(dev);
  }
  log(`runner setup: ${DEVICES.map((d) => `${d} ${state[d] ? 'usable' : 'NOT usable'}`).join(', ')}`);
  return state;
}
