/**
 * What a run is doing right now, in one line: the live status line of a terminal (redrawn in place) and
 * the heartbeat of a log (a line at least every minute, so that a quiet CI log is not taken for a hang).
 * Pure: the activity and the clock come in, text comes out, plainText-filtered (test names and mkosi's
 * lines are not ours).
 */
import { plainText } from './terminal.ts';

/** The tests whose VMs run now and the image build in progress, with when each started (ms). */
export interface Activity {
  running: { name: string; attempt: number; sinceMs: number }[];
  build?: { sinceMs: number; lastLine?: string };
  done: number;
  total: number;
}

/** How the front door shows progress: a live line (a terminal), colour, and a heartbeat (logs). */
export interface TerminalMode {
  live: boolean;
  color: boolean;
  heartbeat: boolean;
}

/**
 * The mode for a stream: the live line only on a terminal that can clear a line (not TERM=dumb) outside
 * CI (a CI log keeps every redraw); colour on such a terminal unless NO_COLOR is set to anything
 * (no-color.org); the heartbeat wherever there is no live line. Off a terminal: no escapes at all.
 */
export function terminalMode(isTTY: boolean, env: NodeJS.ProcessEnv): TerminalMode {
  const terminal = isTTY && env.TERM !== 'dumb';
  const ci = Boolean(env.CI) && !/^(false|0)$/i.test(env.CI ?? '');
  const live = terminal && !ci;
  return { live, color: terminal && !env.NO_COLOR, heartbeat: !live };
}

/** 7s, 1m05s, 1h02m. */
export function elapsed(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** `s` cut to fit `columns` (one column kept free: writing the last one makes some terminals wrap). */
export function clip(s: string, columns: number): string {
  const room = Math.max(1, columns - 1);
  const chars = [...s];
  return chars.length <= room ? s : `${chars.slice(0, room - 1).join('')}…`;
}

/** The last line of mkosi's that says what it does (`‣ Installing packages`), else its last line. */
export function buildNews(previous: string | undefined, line: string): string | undefined {
  const l = plainText(line).trim();
  if (!l) return previous;
  if (l.startsWith('‣')) return l;
  return previous?.startsWith('‣') ? previous : l;
}

function runningList(a: Activity, nowMs: number): string {
  return a.running
    .map((t) => `${t.name}${t.attempt > 1 ? ` #${t.attempt}` : ''} ${elapsed(nowMs - t.sinceMs)}`)
    .join(', ');
}

/** The live line: what builds or runs now and for how long; '' when nothing does. */
export function liveStatus(a: Activity, nowMs: number): string {
  if (a.build)
    return plainText(
      `building image ${elapsed(nowMs - a.build.sinceMs)}${a.build.lastLine ? `  ${a.build.lastLine}` : ''}`,
    );
  if (a.running.length === 0) return '';
  return plainText(`[${a.done}/${a.total}] running ${a.running.length}: ${runningList(a, nowMs)}`);
}

/** The heartbeat: the same news as a log line of its own; undefined when nothing runs. */
export function heartbeatLine(a: Activity, nowMs: number): string | undefined {
  if (a.build) {
    const last = a.build.lastLine ? `; last line: ${clip(a.build.lastLine, 200)}` : '';
    return plainText(`still building the image (${elapsed(nowMs - a.build.sinceMs)})${last}`);
  }
  if (a.running.length === 0) return undefined;
  return plainText(`[${a.done}/${a.total}] still running ${a.running.length}: ${runningList(a, nowMs)}`);
}
