/**
 * The image build's log: one file that mkosi's stdout and stderr are written into directly, read back
 * line by line as it grows, and its last lines once the build has ended.
 *
 * mkosi writes to the file's descriptor itself and node only reads what landed there: the log is complete
 * whatever happens to this process (a pipe through node would lose what mkosi writes once node is killed,
 * or block mkosi when node falls behind). Reads go through the descriptor the log was created with, never
 * through its path again, and positional reads leave the offset mkosi writes at alone.
 */
import { fstatSync, openSync, read, readSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { StringDecoder } from 'node:string_decoder';

const readAt = promisify(read);

/** Longer lines (a progress bar that never ends its line) are passed on in pieces of this many characters. */
const MAX_LINE = 16 * 1024;

/**
 * Opens the build log fresh, for reading and writing: an entry already there (a file, or a link someone
 * planted) is replaced, never followed.
 */
export async function openBuildLog(path: string): Promise<number> {
  await rm(path, { force: true });
  return openSync(path, 'wx+', 0o644);
}

/** What a terminal would show of a raw line: no line end, only the text after the last carriage return. */
function shown(raw: string): string {
  const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
  const cr = line.lastIndexOf('\r');
  return cr < 0 ? line : line.slice(cr + 1);
}

export interface Follower {
  /** Reads what is left, passes on the last partial line, and stops. */
  stop(): Promise<void>;
}

/**
 * Passes each line written to `fd` from its start to `onLine`, polling every `intervalMs`. Partial lines
 * wait for their end (or stop()); a multi-byte character split between two reads stays whole. A throwing
 * listener loses its line, never the build.
 */
export function followLines(fd: number, onLine: (line: string) => void, intervalMs = 200): Follower {
  const buf = Buffer.alloc(64 * 1024);
  const decoder = new StringDecoder('utf8');
  let pos = 0;
  let partial = '';
  const emit = (raw: string) => {
    try {
      onLine(shown(raw));
    } catch {
      // The log has the line; only this view of it is lost.
    }
  };
  const take = (text: string) => {
    const parts = (partial + text).split('\n');
    partial = parts.pop()!;
    for (const p of parts) emit(p);
    while (partial.length > MAX_LINE) {
      emit(partial.slice(0, MAX_LINE));
      partial = partial.slice(MAX_LINE);
    }
  };
  const drain = async () => {
    for (;;) {
      const { bytesRead } = await readAt(fd, buf, 0, buf.length, pos);
      if (bytesRead === 0) return;
      pos += bytesRead;
      take(decoder.write(buf.subarray(0, bytesRead)));
    }
  };
  // One read at a time, in order: each tick queues behind the last.
  let busy = Promise.resolve();
  const tick = () => (busy = busy.then(drain).catch(() => {}));
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await tick();
      const rest = partial + decoder.end();
      partial = '';
      if (rest) emit(rest);
    },
  };
}

/** The last `n` lines of the file at `fd` (trailing blank lines dropped), from at most its last `maxBytes`. */
export function lastLines(fd: number, n: number, maxBytes = 256 * 1024): string[] {
  const size = fstatSync(fd).size;
  const len = Math.min(size, maxBytes);
  const buf = Buffer.alloc(len);
  let got = 0;
  while (got < len) {
    const r = readSync(fd, buf, got, len - got, size - len + got);
    if (r === 0) break;
    got += r;
  }
  const lines = buf.subarray(0, got).toString('utf8').split('\n').map(shown);
  // Cut mid-file: the first line is only the end of one.
  if (len < size) lines.shift();
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();
  return lines.slice(-n).map((l) => (l.length > MAX_LINE ? `${l.slice(0, MAX_LINE)}…` : l));
}
