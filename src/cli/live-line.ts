/**
 * The live status line of `itest run` on a terminal: one line at the bottom of stdout, redrawn in place
 * (carriage return, erase line) and clipped to the terminal's width. Every other line is written through
 * here, so the status line is erased before it and drawn again after: nothing interleaves with it.
 */
import type { StatusLine } from '../engine/progress.ts';
import { clip } from '../results/live-status.ts';

const ERASE = '\r\x1b[K';

export class LiveLine implements StatusLine {
  private text = '';
  private shown = '';

  constructor(private readonly tty: NodeJS.WriteStream) {}

  status(text: string): void {
    this.text = text;
    this.draw();
  }

  /** A whole line on `stream` (stdout or stderr, the same terminal), under no status line. */
  line(stream: NodeJS.WritableStream, line: string): void {
    if (this.shown) this.tty.write(ERASE);
    this.shown = '';
    stream.write(`${line}\n`);
    this.draw();
  }

  /** Erases the status line for good (before the report, or an error). */
  stop(): void {
    this.text = '';
    this.draw();
  }

  private draw(): void {
    // Read each time: the terminal may have been resized.
    const next = this.text ? clip(this.text, this.tty.columns || 80) : '';
    if (next === this.shown) return;
    this.tty.write(`${ERASE}${next}`);
    this.shown = next;
  }
}
