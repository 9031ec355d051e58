/**
 * A minimal QMP client (QEMU's JSON monitor protocol over a unix socket): negotiate, run commands,
 * collect their returns. Used to ask a hung guest's kernel for a task dump before it is killed.
 */
import { createConnection } from 'node:net';

export type QmpCommand = { execute: string; arguments?: Record<string, unknown> };

export function qmpArgs(socketPath: string): string[] {
  return ['-qmp', `unix:${socketPath.replace(/,/g, ',,')},server=on,wait=off`];
}

/** Sends the commands in order after capabilities negotiation; rejects on error, EOF or timeout. */
export function qmp(socketPath: string, commands: QmpCommand[], timeoutMs = 5000): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    const results: unknown[] = [];
    const queue: QmpCommand[] = [{ execute: 'qmp_capabilities' }, ...commands];
    let buf = '';
    let negotiated = false;
    const timer = setTimeout(() => finish(new Error(`QMP: no answer within ${timeoutMs} ms`)), timeoutMs);
    const finish = (err?: Error) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(results);
    };
    const sendNext = () => {
      const next = queue.shift();
      if (!next) return finish();
      sock.write(`${JSON.stringify(next)}\n`);
    };
    sock.setEncoding('utf8');
    sock.on('error', (e) => finish(e));
    sock.on('close', () => finish(new Error('QMP: connection closed')));
    sock.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        if ('QMP' in msg) sendNext();
        else if ('error' in msg) finish(new Error(`QMP: ${JSON.stringify(msg.error)}`));
        else if ('return' in msg) {
          if (negotiated) results.push(msg.return);
          negotiated = true;
          sendNext();
        }
        // Asynchronous events are ignored.
      }
    });
  });
}

/** Alt+SysRq+T through the guest's keyboard: the kernel prints every task's state and stack. */
export const SYSRQ_SHOW_TASKS: QmpCommand = {
  execute: 'send-key',
  arguments: { keys: ['alt', 'sysrq', 't'].map((k) => ({ type: 'qcode', data: k })) },
};

/** QEMU's run state (`running`, `paused`, `internal-error`, ...), or undefined when QMP does not answer. */
export async function queryStatus(socketPath: string, timeoutMs = 1000): Promise<string | undefined> {
  try {
    const [ret] = await qmp(socketPath, [{ execute: 'query-status' }], timeoutMs);
    const status = (ret as { status?: unknown } | undefined)?.status;
    return typeof status === 'string' ? status : undefined;
  } catch {
    return undefined;
  }
}
