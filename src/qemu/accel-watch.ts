/**
 * Watches a running QEMU for a broken accelerator: its output (mkosi's console pipes, or the probe's
 * stderr) for QEMU's KVM error lines, and its QMP socket for the run state `internal-error`. QEMU does
 * not exit when KVM fails that way, so without this the VM would sit paused until the test's timeout.
 */
import type { Readable } from 'node:stream';
import { findAccelFailure, isAccelRunState, type AccelFailure } from './accel-failure.ts';
import { stripAnsi } from '../util/ansi.ts';
import { queryStatus } from './qmp.ts';

export interface AccelWatchOptions {
  /** QEMU's output as it arrives (both of mkosi's pipes, or QEMU's stderr). */
  streams: Readable[];
  /** QEMU's QMP socket, asked for its run state; absent until QEMU has started, which is fine. */
  qmpSocket?: string;
  /** How often to ask QMP (ms). */
  qmpIntervalMs?: number;
  /** Called once, with QEMU's own line when there is one. */
  onBroken: (failure: AccelFailure) => void;
}

export interface AccelWatch {
  stop(): void;
}

/** QEMU prints its reason just before it pauses; allow its words this long to arrive after the run state. */
const WORDS_GRACE_MS = 1000;

export function watchAccel(o: AccelWatchOptions): AccelWatch {
  let done = false;
  let timer: NodeJS.Timeout | undefined;
  let grace: NodeJS.Timeout | undefined;
  const report = (f: AccelFailure) => {
    if (done) return;
    done = true;
    clearInterval(timer);
    clearTimeout(grace);
    o.onBroken(f);
  };
  // Per stream: complete lines, plus the unfinished last one (QEMU may pause before its newline).
  const listeners = o.streams.map((stream) => {
    let rest = '';
    const onData = (d: Buffer | string) => {
      const lines = (rest + stripAnsi(String(d))).split(/\r?\n/);
      rest = lines.pop() ?? '';
      const found = findAccelFailure([...lines, rest]);
      if (found) report(found);
    };
    stream.on('data', onData);
    return { stream, onData };
  });

  let asking = false;
  if (o.qmpSocket) {
    const socket = o.qmpSocket;
    timer = setInterval(() => {
      if (asking || done) return;
      asking = true;
      void queryStatus(socket, 1000)
        .then((status) => {
          if (!status || !isAccelRunState(status) || grace) return;
          grace = setTimeout(
            () => report({ line: `QMP query-status: ${status}`, effect: 'paused' }),
            WORDS_GRACE_MS,
          );
        })
        .finally(() => (asking = false));
    }, o.qmpIntervalMs ?? 1000);
  }
  return {
    stop() {
      done = true;
      clearInterval(timer);
      clearTimeout(grace);
      for (const { stream, onData } of listeners) stream.off('data', onData);
    },
  };
}
