/**
 * The user-space vsock device (transport `vsock-user`): QEMU's vhost-user-vsock-pci backed by one
 * vhost-device-vsock process per VM, for hosts without a usable /dev/vhost-vsock. Pure: socket paths, the
 * backend's argv and QEMU's arguments.
 *
 * vhost-device-vsock turns a guest connection to host CID 2, port P into a connection to the Unix socket
 * `<uds>_P` (someone must listen there), and a connection to `<uds>` that writes `CONNECT <port>\n` into
 * a connection to the guest's port. vhost-user needs the guest's RAM shared with the backend: a memfd
 * memory backend exactly as large as the VM's RAM.
 */
import { join } from 'node:path';

/** The guest's CID on its own device (every VM has a device of its own, so all may use the same). */
export const GUEST_CID = 3;
/** The host's CID as the guest sees it. */
export const HOST_CID = 2;
/** Host ports the guest connects to: PID 1's sd_notify messages, and journald's forwarded journal. */
export const NOTIFY_PORT = 10_001;
export const JOURNAL_FORWARD_PORT = 10_002;
/** sshd in the guest (systemd-ssh-generator binds it to vsock port 22 when the image has sshd). */
export const GUEST_SSH_PORT = 22;

/** Unix socket paths are limited to 108 bytes (sun_path), the terminating NUL included. */
export const MAX_SOCKET_PATH = 107;

export interface UserVsockPaths {
  /** The VM's own directory (0700), named after its machine so that the post step can tell it is ours. */
  dir: string;
  /** vhost-user control socket: vhost-device-vsock listens, QEMU connects. */
  control: string;
  /** vhost-device-vsock's Unix side: `<uds>` for host-to-guest, `<uds>_<port>` for guest-to-host. */
  uds: string;
  notify: string;
  journal: string;
}

/** The sockets of machine's device, under tmp (kept short: sun_path). */
export function userVsockPaths(machine: string, tmp: string): UserVsockPaths {
  const dir = join(tmp, `${machine}.vsock`);
  const uds = join(dir, 'v');
  const paths = {
    dir,
    control: join(dir, 'vhost-user'),
    uds,
    notify: `${uds}_${NOTIFY_PORT}`,
    journal: `${uds}_${JOURNAL_FORWARD_PORT}`,
  };
  const long = Object.values(paths).find((p) => Buffer.byteLength(p) > MAX_SOCKET_PATH);
  if (long)
    throw new Error(
      `the vsock-user socket path ${long} is longer than a Unix socket path may be (${MAX_SOCKET_PATH} bytes): set TMPDIR to a shorter directory`,
    );
  return paths;
}

export function vhostDeviceArgv(binary: string, p: UserVsockPaths): string[] {
  return [binary, `--guest-cid=${GUEST_CID}`, `--socket=${p.control}`, `--uds-path=${p.uds}`];
}

/** QEMU's socket chardev options are comma-separated: a comma in a path must be doubled. */
const qemuPath = (p: string) => p.replace(/,/g, ',,');

/** QEMU's arguments for the device; ram is the VM's memory as given to mkosi (e.g. `1024M`). */
export function userVsockQemuArgs(p: UserVsockPaths, ram: string): string[] {
  return [
    '-object',
    `memory-backend-memfd,id=itest-mem,size=${ram},share=on`,
    '-machine',
    'memory-backend=itest-mem',
    '-chardev',
    `socket,id=itest-vsock,path=${qemuPath(p.control)}`,
    '-device',
    'vhost-user-vsock-pci,chardev=itest-vsock',
  ];
}

/** The guest's credentials that point PID 1's notifications and journald's forwarding at the host. */
export function userVsockCredentials(): [string, string][] {
  return [
    ['vmm.notify_socket', `vsock-stream:${HOST_CID}:${NOTIFY_PORT}`],
    ['journal.forward_to_socket', `vsock-stream:${HOST_CID}:${JOURNAL_FORWARD_PORT}`],
  ];
}
