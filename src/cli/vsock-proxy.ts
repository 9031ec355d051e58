/**
 * `itest vsock-proxy UDS PORT`: ssh's ProxyCommand for a vsock-user VM. Connects to vhost-device-vsock's
 * host-to-guest socket, asks for the guest's port (`CONNECT <port>\n`, answered `OK <host port>\n`), then
 * relays stdin and stdout until either side ends.
 */
import { connect } from 'node:net';
import { UserError } from '../util/errors.ts';

/** How long the device may take to answer CONNECT (it answers at once when the guest's port listens). */
const ANSWER_MS = 10_000;

export async function vsockProxy(uds: string, portText: string): Promise<number> {
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 0xffffffff)
    throw new UserError(
      `itest vsock-proxy: port must be a vsock port number, not ${JSON.stringify(portText)}`,
    );
  const socket = connect(uds);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', (e) =>
      reject(
        new UserError(`itest vsock-proxy: cannot reach the VM's vsock device at ${uds}: ${e.message}`, 1),
      ),
    );
  });
  socket.write(`CONNECT ${port}\n`);
  // The answer line, then the guest's bytes (which may arrive in the same chunk).
  const rest = await new Promise<Buffer>((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const fail = (why: string) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new UserError(`itest vsock-proxy: ${why}`, 1));
    };
    const timer = setTimeout(
      () =>
        fail(`the VM's vsock device at ${uds} did not answer CONNECT ${port} within ${ANSWER_MS / 1000} s`),
      ANSWER_MS,
    );
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      const line = buf.subarray(0, nl).toString('utf8');
      if (!line.startsWith('OK ')) fail(`the device answered ${JSON.stringify(line)}`);
      else resolve(buf.subarray(nl + 1));
    };
    const onClose = () =>
      fail(
        `nothing listens on the guest's vsock port ${port} (yet): is the VM still booting, or has the image no sshd?`,
      );
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.on('error', () => undefined);
  });
  if (rest.length) process.stdout.write(rest);
  socket.pipe(process.stdout);
  process.stdin.pipe(socket);
  return new Promise((resolve) => {
    socket.once('close', () => resolve(0));
    socket.once('error', () => resolve(1));
  });
}
