/**
 * ssh into a test's VM over vsock, without a network: a throw-away key per run (the guest gets its public
 * half as the `ssh.authorized_keys.root` credential; systemd-ssh-generator binds the image's sshd to vsock
 * port 22), and a record per running VM that `itest ssh TEST` reads to reach it.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from '../util/process.ts';

export interface SshKey {
  private: string;
  public: string;
}

/** The key's directory in the run's work root (which the engine made afresh): private to this user. */
export async function sshKeyDir(workRoot: string): Promise<string> {
  // A leading dot: no test's work directory can have this name (safeFileName never starts with one).
  const dir = join(workRoot, '.ssh');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { mode: 0o700 });
  return dir;
}

/** `ssh-keygen` a fresh ed25519 key into dir; undefined (and why) when there is no ssh-keygen. */
export async function makeSshKey(dir: string): Promise<SshKey | { error: string }> {
  const file = join(dir, 'id_ed25519');
  await rm(file, { force: true });
  await rm(`${file}.pub`, { force: true });
  const r = await runCommand(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'itest', '-f', file], {
    timeoutMs: 30_000,
  });
  if (r.spawnError || r.code !== 0)
    return {
      error: `no ssh key for the VMs (ssh-keygen ${r.spawnError ? 'not found: install openssh-client' : `failed: ${r.stderr.trim()}`})`,
    };
  return { private: file, public: (await readFile(`${file}.pub`, 'utf8')).trim() };
}

/** What `itest ssh` needs of a running VM, written beside its serial channels while it runs. */
export interface VmRecord {
  test: string;
  machine: string;
  transport: 'vsock' | 'vsock-user';
  /** vsock-user: vhost-device-vsock's host-to-guest socket (`CONNECT <port>`). */
  uds?: string;
  /** The private key whose public half the guest was given. */
  key: string;
  /** The itest process that runs the VM. */
  pid: number;
  /** vsock: mkosi's own ssh verb for this VM (mkosi knows the CID it gave it). */
  mkosiSsh?: string[];
}

export const VM_RECORD = 'vm.json';

/**
 * The record of one VM for `itest ssh`, or undefined when it has no vsock to reach (serial, or the
 * user-space device did not come up). Pure.
 */
export function vmRecord(p: {
  test: string;
  machine: string;
  key: string;
  /** vsock-user: the device's host-to-guest socket. */
  uds?: string;
  /** vsock: mkosi's command line up to its verb (mkosi, --directory, --output-dir). */
  mkosi?: string[];
}): VmRecord | undefined {
  const base = { test: p.test, machine: p.machine, key: p.key, pid: process.pid };
  if (p.uds) return { ...base, transport: 'vsock-user', uds: p.uds };
  if (p.mkosi)
    return { ...base, transport: 'vsock', mkosiSsh: [...p.mkosi, `--machine=${p.machine}`, 'ssh'] };
  return undefined;
}

export async function writeVmRecord(workDir: string, r: VmRecord): Promise<void> {
  const file = join(workDir, VM_RECORD);
  // Ours to create: whatever is at its name goes (wx never writes through a symlink).
  await rm(file, { force: true });
  await writeFile(file, `${JSON.stringify(r)}\n`, { flag: 'wx', mode: 0o600 });
}

export async function readVmRecord(workDir: string): Promise<VmRecord | undefined> {
  const text = await readFile(join(workDir, VM_RECORD), 'utf8').catch(() => undefined);
  if (!text) return undefined;
  try {
    return JSON.parse(text) as VmRecord;
  } catch {
    return undefined;
  }
}

/** A word for /bin/sh: ssh runs its ProxyCommand through the user's shell, so the words are quoted. Pure. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The ssh argv that reaches a vsock-user VM: a ProxyCommand running this very itest's `vsock-proxy`
 * (`self` is how to start it: node, its flags, the CLI script), the run's key, no host key memory (every
 * VM is new), no config files of the user's that could send it elsewhere. Pure.
 */
export function sshArgv(r: VmRecord & { uds: string }, self: string[], command: string[]): string[] {
  const proxy = [...self, 'vsock-proxy', r.uds, '22'].map(shellQuote).join(' ');
  return [
    'ssh',
    '-F',
    'none',
    '-i',
    r.key,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'LogLevel=ERROR',
    '-o',
    `ProxyCommand=${proxy}`,
    ...(command.length === 0 ? [] : ['-T']),
    '--',
    `root@${r.machine}`,
    ...command,
  ];
}
