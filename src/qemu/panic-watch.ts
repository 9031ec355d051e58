/**
 * Watches the guest's console for a kernel panic, for guest kernels without the pvpanic driver: with it,
 * QEMU exits by itself (vm-argv.ts panicArgs); without it, `panic=-1` reboots the guest and the test would
 * start over, or a kernel told otherwise would sit there until the timeout. The VM is ended once the
 * kernel has printed its panic report (its `---[ end Kernel panic` line), or a moment after the first
 * line when no end line comes. A test that prints those words ends its own VM: it can only hurt itself.
 */
import type { Readable } from 'node:stream';
import { stripAnsi } from '../util/ansi.ts';

const PANIC = /Kernel panic - not syncing/;
const PANIC_END = /---\[ end Kernel panic/;

export interface PanicWatch {
  stop(): void;
}

/** How the kernel's panic report shows in these lines: `end` once it is complete. Pure. */
export function panicIn(lines: readonly string[]): 'start' | 'end' | undefined {
  if (lines.some((l) => PANIC_END.test(l))) return 'end';
  return lines.some((l) => PANIC.test(l)) ? 'start' : undefined;
}

export function watchPanic(stream: Readable, onPanic: () => void, graceMs = 2000): PanicWatch {
  let done = false;
  let grace: NodeJS.Timeout | undefined;
  let rest = '';
  const fire = () => {
    if (done) return;
    done = true;
    clearTimeout(grace);
    stream.off('data', onData);
    onPanic();
  };
  function onData(d: Buffer | string) {
    const lines = (rest + stripAnsi(String(d))).split(/\r?\n/);
    rest = lines.pop() ?? '';
    const seen = panicIn([...lines, rest]);
    if (seen === 'end') fire();
    else if (seen === 'start') grace ??= setTimeout(fire, graceMs);
  }
  stream.on('data', onData);
  return {
    stop() {
      done = true;
      clearTimeout(grace);
      stream.off('data', onData);
    },
  };
}
